"""A reason for humans, with the category it is counted under. Its own module so that what the
reasons are about (eligibility, admission, the nodes and workloads they judge) can all import it."""

from __future__ import annotations


class Reason(str):
    """A reason for humans (it is a str), with `category`: a short label to count it under. Metric
    labels must stay few; telling the kind from the text afterwards breaks when it is reworded."""

    category: str

    def __new__(cls, text: str, category: str) -> "Reason":
        reason = super().__new__(cls, text)
        reason.category = category
        return reason
