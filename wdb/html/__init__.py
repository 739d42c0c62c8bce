"""HTML: charset decoding, URL handling and media/text extraction (lexbor via selectolax)."""
