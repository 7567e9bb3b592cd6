import unittest

from greet import greet


class T(unittest.TestCase):
    def test_greet(self) -> None:
        self.assertEqual(greet("qik"), "hello, qik")
