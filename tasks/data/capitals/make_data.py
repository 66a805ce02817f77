"""Writes the data of the shipped `capitals` (yes/no) and `capitals_mc` (four choices) tasks.

Questions about the capital cities of countries, from the hand-written table below (countries whose
capital is settled and widely known; none with two capitals or a disputed one). Train and eval use
disjoint countries (alternate entries), so an eval answer is never seen in training. A wrong city is
always another country's capital from the same split, so it is a plausible answer. Seeded: rerunning
reproduces the files.

    python tasks/data/capitals/make_data.py
"""

import json
import random
from pathlib import Path

CAPITALS = [
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Portugal", "Lisbon"),
    ("the United Kingdom", "London"), ("Ireland", "Dublin"), ("the Netherlands", "Amsterdam"),
    ("Belgium", "Brussels"), ("Austria", "Vienna"), ("Switzerland", "Bern"), ("Poland", "Warsaw"),
    ("the Czech Republic", "Prague"), ("Hungary", "Budapest"), ("Greece", "Athens"), ("Sweden", "Stockholm"),
    ("Norway", "Oslo"), ("Denmark", "Copenhagen"), ("Finland", "Helsinki"), ("Iceland", "Reykjavik"),
    ("Russia", "Moscow"), ("Ukraine", "Kyiv"), ("Turkey", "Ankara"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"),
    ("Nigeria", "Abuja"), ("Ghana", "Accra"), ("Ethiopia", "Addis Ababa"), ("Morocco", "Rabat"),
    ("Japan", "Tokyo"), ("China", "Beijing"), ("South Korea", "Seoul"), ("India", "New Delhi"),
    ("Pakistan", "Islamabad"), ("Bangladesh", "Dhaka"), ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"),
    ("Indonesia", "Jakarta"), ("the Philippines", "Manila"), ("Malaysia", "Kuala Lumpur"),
    ("Australia", "Canberra"), ("New Zealand", "Wellington"), ("Canada", "Ottawa"), ("Mexico", "Mexico City"),
    ("Brazil", "Brasilia"), ("Argentina", "Buenos Aires"), ("Chile", "Santiago"), ("Peru", "Lima"),
    ("Colombia", "Bogota"), ("Venezuela", "Caracas"), ("Cuba", "Havana"), ("Iran", "Tehran"), ("Iraq", "Baghdad"),
    ("Saudi Arabia", "Riyadh"), ("Syria", "Damascus"), ("Afghanistan", "Kabul"), ("Nepal", "Kathmandu"),
    ("Mongolia", "Ulaanbaatar"), ("Romania", "Bucharest"), ("Bulgaria", "Sofia"), ("Serbia", "Belgrade"),
    ("Croatia", "Zagreb"), ("Slovakia", "Bratislava"), ("Slovenia", "Ljubljana"), ("Lithuania", "Vilnius"),
    ("Latvia", "Riga"), ("Estonia", "Tallinn"), ("Uruguay", "Montevideo"), ("Ecuador", "Quito"),
    ("Jamaica", "Kingston"), ("Senegal", "Dakar"), ("Uganda", "Kampala"), ("Zimbabwe", "Harare"),
    ("Algeria", "Algiers"), ("Tunisia", "Tunis"), ("Libya", "Tripoli"), ("Sudan", "Khartoum"), ("Qatar", "Doha"),
    ("Jordan", "Amman"), ("Lebanon", "Beirut"), ("North Korea", "Pyongyang"), ("Uzbekistan", "Tashkent"),
    ("Georgia", "Tbilisi"), ("Armenia", "Yerevan"), ("Azerbaijan", "Baku"), ("Belarus", "Minsk"),
]
YES_NO = ["Is {city} the capital of {country}?", "Is the capital of {country} {city}?",
          "Is {city} the capital city of {country}?"]


def split_table(split):
    # Even-indexed countries train, odd-indexed evaluate: no country appears in both splits.
    return CAPITALS[0::2] if split == "train" else CAPITALS[1::2]


def yes_no_rows(table, rng):
    """Per country one true and one false question (the city of another country in the table), shuffled."""
    rows = []
    for country, city in table:
        other = rng.choice([c for k, c in table if k != country])
        for label, asked in (("yes", city), ("no", other)):
            rows.append({"question": rng.choice(YES_NO).format(city=asked, country=country), "label": label})
    rng.shuffle(rows)
    return rows


def choice_rows(table, rng):
    """Per country: its capital among three other capitals of the table, in a random position."""
    rows = []
    for country, city in table:
        choices = rng.sample([c for k, c in table if k != country], 3) + [city]
        rng.shuffle(choices)
        rows.append({"country": country, "choices": choices, "answer": choices.index(city)})
    rng.shuffle(rows)
    return rows


def main():
    here = Path(__file__).parent
    rng = random.Random(20261129)
    for split in ("train", "eval"):
        table = split_table(split)
        for name, rows in ((split, yes_no_rows(table, rng)), (f"mc_{split}", choice_rows(table, rng))):
            with open(here / f"{name}.jsonl", "w") as f:
                f.writelines(json.dumps(row) + "\n" for row in rows)


if __name__ == "__main__":
    main()
