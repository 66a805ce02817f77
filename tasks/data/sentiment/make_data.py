"""Writes train.jsonl and eval.jsonl for the shipped `sentiment` task.

Short product reviews labeled positive, negative or neutral (mixed or
lukewarm). Reviews are composed from hand-written phrase banks; the two splits
use disjoint products *and* disjoint phrase halves, so no eval sentence (or
sentence fragment) is seen in training. Seeded: rerunning reproduces the files.

    python tasks/data/sentiment/make_data.py
"""

import json
import random
from pathlib import Path

PRODUCTS = {
    "train": ["wireless earbuds", "espresso machine", "hiking backpack", "desk lamp", "electric kettle",
              "yoga mat", "mechanical keyboard", "air fryer", "phone case", "rain jacket", "office chair",
              "bluetooth speaker", "water bottle", "robot vacuum", "camping tent", "paperback thriller"],
    "eval": ["noise-cancelling headphones", "blender", "running shoes", "laptop stand", "coffee grinder",
             "winter coat", "smartwatch", "cast iron pan", "board game", "e-reader", "standing desk",
             "electric toothbrush"],
}
POSITIVE = [
    "It works exactly as described and I use it every day.", "Setup took two minutes and it has been flawless since.",
    "Honestly the best purchase I have made this year.", "The build quality is excellent and it feels solid.",
    "My whole family loves it.", "Worth every penny, I already ordered a second one.",
    "It exceeded my expectations in every way.", "Customer support was quick and friendly too.",
    "After three months it still looks brand new.", "I would recommend it to anyone without hesitation.",
    "It is quiet, fast and easy to clean.", "Five stars, it does the job perfectly.",
    "Great value for the price.", "I was skeptical at first but it won me over completely.",
    "The battery lasts far longer than advertised.", "Delivery was early and the packaging was perfect.",
]
NEGATIVE = [
    "It broke after a week of light use.", "Complete waste of money, I am returning it.",
    "The instructions were useless and it never worked properly.", "It feels cheap and flimsy.",
    "Customer service ignored my emails for a month.", "It stopped charging after two days.",
    "Terrible quality, the seams split the first time I used it.", "I regret buying it.",
    "It is loud, slow and impossible to clean.", "Nothing like the photos, very disappointing.",
    "One star, avoid this product.", "It arrived scratched and missing parts.",
    "The battery dies within an hour.", "It overheats and smells like burning plastic.",
    "Worst purchase I have made in years.", "It made my mornings more stressful, not less.",
]
NEUTRAL = [
    "It is fine, nothing special.", "Some things are good and some are annoying, so it evens out.",
    "It does the basic job but I expected a bit more.", "Average quality for an average price.",
    "The design is nice but the performance is only okay.", "It works, although the app is clunky.",
    "Not bad, not great.", "I have mixed feelings about it.",
    "Decent enough, though I probably would not buy it again.", "It is okay for occasional use.",
    "Good features, but the build feels a little cheap.", "It arrived on time and works as expected, nothing more.",
    "Comfortable, but the sizing runs small.", "Fast shipping, mediocre product.",
    "It has pros and cons.", "Reasonable, but there are better options out there.",
]
OPENERS = ["I bought this {p} last month.", "Review of the {p}.", "We got the {p} as a gift.",
           "My thoughts on this {p}:", "Used the {p} for a few weeks now.", "Ordered the {p} on sale."]
BANKS = {"positive": POSITIVE, "negative": NEGATIVE, "neutral": NEUTRAL}


def split_bank(bank, split):
    # Even-indexed phrases train, odd-indexed evaluate: no sentence appears in both splits.
    return bank[0::2] if split == "train" else bank[1::2]


def make(split, n, rng):
    rows, seen = [], set()
    while len(rows) < n:
        label = rng.choice(sorted(BANKS))
        product = rng.choice(PRODUCTS[split])
        phrases = rng.sample(split_bank(BANKS[label], split), k=2)
        text = " ".join([rng.choice(OPENERS).format(p=product), *phrases])
        if text in seen:
            continue
        seen.add(text)
        rows.append({"text": text, "label": label})
    return rows


def main():
    here = Path(__file__).parent
    rng = random.Random(20261123)
    for split, n in [("train", 400), ("eval", 240)]:
        rows = make(split, n, rng)
        with open(here / f"{split}.jsonl", "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
