import unittest

from count import count


class T(unittest.TestCase):
    def test_count(self) -> None:
        self.assertEqual(count("a b c"), 3)
