"""Tags and captions (Tag2Text, RAM, RAM++) in FiftyOne: adapter, labels, runner, evaluation."""
