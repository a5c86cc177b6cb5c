"""TagAlign dense segmentation in FiftyOne: adapter, runner, mIoU evaluation, training."""
