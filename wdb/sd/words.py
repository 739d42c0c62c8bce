"""Word lists the prompt generator draws from: subjects by category, with the attributes, places and
actions that make sense for each category, and details (light, view) that fit any photograph.

A nonsensical prompt takes the same kinds of parts from another category ("a furry bicycle in a
fridge swimming upstream"): impossible combinations, not random words.
"""
from __future__ import annotations

CATEGORIES: dict[str, dict[str, list[str]]] = {
    "animal": {
        "subjects": ["dog", "cat", "horse", "cow", "sheep", "elephant", "giraffe", "zebra", "bear", "bird",
                     "owl", "fox", "rabbit", "tiger", "penguin"],
        "attributes": ["furry", "sleepy", "spotted", "young", "muddy", "curious", "white", "brown"],
        "places": ["in a meadow", "on a farm", "in a forest", "by a river", "in the snow", "at the zoo"],
        "actions": ["looking at the camera", "eating grass", "running through the field", "sleeping in the sun",
                    "drinking water", "playing with its young"],
    },
    "vehicle": {
        "subjects": ["car", "bicycle", "bus", "train", "motorcycle", "truck", "airplane", "boat", "tram",
                     "scooter", "tractor", "sailboat", "helicopter", "van"],
        "attributes": ["red", "rusty", "shiny", "vintage", "electric", "old", "blue", "yellow"],
        "places": ["on a city street", "at a station", "in a parking lot", "on a country road", "in a harbour",
                   "at an airport"],
        "actions": ["waiting at a traffic light", "carrying passengers", "parked by the curb",
                    "driving in the rain", "loaded with boxes", "leaving the station"],
    },
    "food": {
        "subjects": ["pizza", "sandwich", "cake", "banana", "apple", "bowl of soup", "plate of pasta", "donut",
                     "hot dog", "salad", "cup of coffee", "orange", "broccoli", "burger"],
        "attributes": ["fresh", "steaming", "sliced", "homemade", "colourful", "half-eaten", "crispy", "ripe"],
        "places": ["on a wooden table", "in a kitchen", "at a restaurant", "on a picnic blanket",
                   "in a lunch box", "at a market stall"],
        "actions": ["served with a fork", "topped with herbs", "next to a glass of water", "cut into pieces",
                    "being prepared by a cook", "arranged on a white plate"],
    },
    "object": {
        "subjects": ["computer", "laptop", "clock", "umbrella", "chair", "teddy bear", "vase", "book",
                     "television", "phone", "lamp", "suitcase", "guitar", "kite", "backpack"],
        "attributes": ["shiny", "wooden", "broken", "modern", "antique", "small", "black", "leather"],
        "places": ["in an office", "in a living room", "on a desk", "in a shop window", "in a bedroom",
                   "in a classroom"],
        "actions": ["next to a stack of books", "lit by a window", "covered in dust",
                    "surrounded by papers", "standing in the corner", "reflecting the light"],
    },
    "place": {
        "subjects": ["bridge", "lighthouse", "castle", "church", "skyscraper", "farmhouse", "tower", "market",
                     "beach", "mountain", "waterfall", "park", "harbour", "stadium"],
        "attributes": ["old", "crowded", "quiet", "snowy", "sunlit", "misty", "abandoned", "famous"],
        "places": ["in a small town", "by the sea", "in the mountains", "in a big city", "in the countryside",
                   "on an island"],
        "actions": ["seen from across the water", "with people walking by", "under a cloudy sky",
                    "reflected in a lake", "decorated with flags", "at the end of a long road"],
    },
    "person": {
        "subjects": ["woman", "man", "child", "skateboarder", "surfer", "tennis player", "chef", "farmer",
                     "baseball player", "skier", "musician", "painter", "runner", "doctor"],
        "attributes": ["smiling", "tired", "young", "elderly", "focused", "happy", "tall", "barefoot"],
        "places": ["in a park", "on a beach", "in a kitchen", "on a tennis court", "on a ski slope",
                   "in a workshop"],
        "actions": ["holding an umbrella", "riding a wave", "throwing a ball", "reading a newspaper",
                    "talking on the phone", "carrying a basket"],
    },
    "plant": {
        "subjects": ["tree", "rose", "sunflower", "cactus", "oak", "palm tree", "tulip", "fern", "bonsai",
                     "mushroom", "pine tree", "orchid", "daisy", "vine"],
        "attributes": ["blooming", "tall", "green", "dry", "ancient", "tiny", "wild", "potted"],
        "places": ["in a garden", "in a greenhouse", "on a hillside", "in a desert", "by a fence",
                   "on a balcony"],
        "actions": ["swaying in the wind", "covered in morning dew", "growing towards the sun",
                    "losing its leaves", "shading a bench", "full of bees"],
    },
}

DETAILS = ["in warm evening light", "photographed from above", "with a blurred background",
           "in soft morning fog", "under bright studio lights", "in black and white", "at sunset",
           "in a wide angle shot", "on a rainy day", "with long shadows", "in high detail", "at night"]

# impossible in any photograph, for the fifth level of a nonsensical prompt
IMPOSSIBLE_DETAILS = ["with rain falling upwards", "under two moons", "made entirely of glass",
                      "floating above the clouds", "melting like wax", "casting a square shadow",
                      "with the sky below the ground", "drawn in smoke", "inside a soap bubble",
                      "with clocks for clouds", "upside down", "in a sky full of fish"]

STOP_WORDS = frozenset(
    "a an the of in on at by to for with from into onto over under and or but is are be its it his her "
    "their this that these those as up down out off next near".split())
