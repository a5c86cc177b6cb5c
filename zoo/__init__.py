"""The FiftyOne remote model zoo source of tag2text-zoo.

``foz.register_zoo_model_source("https://github.com/tag2text-zoo/tag2text-zoo")`` copies this
folder (the one holding ``manifest.json``) into FiftyOne's model zoo directory and calls the hooks
below. They belong to the installed ``tag2text_zoo`` package (the manifest's requirement), so a
zoo-loaded model is made of the same classes as ``from tag2text_zoo import ...``; this folder
carries no code of its own.
"""

try:
    from tag2text_zoo.zoo import download_model, load_model, parse_parameters, resolve_input
except ModuleNotFoundError as err:
    if err.name != "tag2text_zoo":
        raise
    raise ImportError(
        "the tag2text-zoo models need the tag2text_zoo package: "
        "pip install 'tag2text-zoo @ git+https://github.com/tag2text-zoo/tag2text-zoo'"
    ) from err

__all__ = ["download_model", "load_model", "parse_parameters", "resolve_input"]
