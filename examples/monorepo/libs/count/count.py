def count(words: str) -> int:
    return len(words.split())
