"""Ingest at Common Crawl scale: Ray tasks write shard databases, one driver merges them.

- task.py: one chunk of one archive into a complete shard database (the local ingest's code)
- driver.py: `wdb ingest --executor ray`: registers, submits, merges each shard as it lands
- merge.py: a shard into the main database exactly once (`wdb merge`)
- status.py / show.py: `wdb status`, `wdb show`
"""
