"""Plain code: `python3 -m unittest` runs it without the worker."""


def greeting(name: str) -> str:
    return f"Hello, {name}!"
