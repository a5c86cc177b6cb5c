"""Grounded segmentation (tags -> Grounding DINO -> SAM) in FiftyOne: adapter, labels, runner."""
