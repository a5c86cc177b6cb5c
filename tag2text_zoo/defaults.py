"""The one source of defaults: model names, thresholds and output fields.

Engines, the API, the CLI, the App forms and the zoo all read these, so they cannot disagree.
"""

# Models
TAGGER = "tag2text-swin-14m"
DETECTORS = ("IDEA-Research/grounding-dino-tiny", "IDEA-Research/grounding-dino-base")
SEGMENTERS = ("facebook/sam-vit-base", "facebook/sam-vit-large", "facebook/sam-vit-huge")
DETECTOR, SEGMENTER = DETECTORS[0], SEGMENTERS[0]
CLIP = "openai/clip-vit-base-patch16"

# Grounded segmentation: the Grounded-SAM demos' thresholds
BOX_THRESHOLD = 0.25
TEXT_THRESHOLD = 0.2
NMS_IOU = 0.5

# Precision: float32 weights; bfloat16 / float16 run under autocast
DTYPES = ("float32", "bfloat16", "float16")
# Taggers also take int8 on the CPU: float32 with int8 linear layers (engines/int8.py)
TAGGER_DTYPES = (*DTYPES, "int8")

# Images per tagger batch: up to this many captions decode together (on the CPU the encoders
# still take at most 4 at a time). Tags + caption per image on the 2-core CPU, full-size Tag2Text
# (README, Performance): float32 0.77 s at 8, 0.70 at 32; bfloat16 0.32 / 0.25.
TAGGER_BATCH_SIZE = 32

# Output fields of the three runners
TAGGING_FIELD = "t2t"
GROUNDED_FIELD = "grounded"
DENSE_FIELD = "tagalign"
