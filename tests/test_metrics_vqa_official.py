"""evalkit's VQA accuracy against the official evaluation code, on thousands of generated answers.

``OfficialVQAEval`` below is a line-by-line transcription of ``VQAEval.__init__`` (its lists), ``evaluate``
(the per-question loop), ``processPunctuation`` and ``processDigitArticle`` from GT-Vision-Lab/VQA at commit
a013f0043c1e2cdc995922dfe257f7149aa9af06, PythonEvaluationTools/vqaEvaluation/vqaEval.py, changed only from
Python 2 to Python 3 syntax (``print``) and to score one question at a time. It shares no code with
evalkit.metrics.vqa, so the comparison is between two independent implementations of the same file.
"""

from __future__ import annotations

import random
import re

import pytest

from evalkit.metrics import normalize_vqa_answer, vqa_accuracy

N_CASES = 4000


class OfficialVQAEval:
    def __init__(self):
        self.contractions = {"aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't", \
            "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't", \
            "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't", "hed": "he'd", "hed've": "he'd've", \
            "he'dve": "he'd've", "hes": "he's", "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", \
            "Im": "I'm", "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll", "let's": "let's", \
            "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've", \
            "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "oughtnt": "oughtn't", \
            "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've", \
            "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", \
            "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've", "somebodyll": "somebody'll", \
            "somebodys": "somebody's", "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've", \
            "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've", \
            "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's", "thered": "there'd", "thered've": "there'd've", \
            "there'dve": "there'd've", "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've", \
            "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't", \
            "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll", "whatre": "what're", \
            "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd", "wheres": "where's", "whereve": "where've", \
            "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll", \
            "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't", "wouldnt've": "wouldn't've", \
            "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll", "yall'd've": "y'all'd've", \
            "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", \
            "youll": "you'll", "youre": "you're", "youve": "you've"}
        self.manualMap    = { 'none': '0',
                              'zero': '0',
                              'one': '1',
                              'two': '2',
                              'three': '3',
                              'four': '4',
                              'five': '5',
                              'six': '6',
                              'seven': '7',
                              'eight': '8',
                              'nine': '9',
                              'ten': '10'
                            }
        self.articles     = ['a',
                             'an',
                             'the'
                            ]


        self.periodStrip  = re.compile("(?!<=\\d)(\\.)(?!\\d)")
        self.commaStrip   = re.compile("(\\d)(\\,)(\\d)")
        self.punct        = [';', r"/", '[', ']', '"', '{', '}',
                             '(', ')', '=', '+', '\\', '_', '-',
                             '>', '<', '@', '`', ',', '?', '!']

    def evaluate_one(self, res_answer, gt_answers):
        """The body of ``evaluate``'s loop for one question (answers as the dicts the VQA api holds)."""
        gts = {"answers": [{"answer": a, "answer_id": i + 1} for i, a in enumerate(gt_answers)]}
        for ansDic in gts['answers']:
            ansDic['answer'] = ansDic['answer'].replace('\n', ' ')
            ansDic['answer'] = ansDic['answer'].replace('\t', ' ')
            ansDic['answer'] = ansDic['answer'].strip()
        resAns = res_answer
        resAns = resAns.replace('\n', ' ')
        resAns = resAns.replace('\t', ' ')
        resAns = resAns.strip()
        gtAcc = []
        gtAnswers = [ans['answer'] for ans in gts['answers']]

        if len(set(gtAnswers)) > 1:
            for ansDic in gts['answers']:
                ansDic['answer'] = self.processPunctuation(ansDic['answer'])
                ansDic['answer'] = self.processDigitArticle(ansDic['answer'])
            resAns = self.processPunctuation(resAns)
            resAns = self.processDigitArticle(resAns)

        for gtAnsDatum in gts['answers']:
            otherGTAns = [item for item in gts['answers'] if item!=gtAnsDatum]
            matchingAns = [item for item in otherGTAns if item['answer']==resAns]
            acc = min(1, float(len(matchingAns))/3)
            gtAcc.append(acc)
        avgGTAcc = float(sum(gtAcc))/len(gtAcc)
        return avgGTAcc

    def processPunctuation(self, inText):
        outText = inText
        for p in self.punct:
            if (p + ' ' in inText or ' ' + p in inText) or (re.search(self.commaStrip, inText) != None):
                outText = outText.replace(p, '')
            else:
                outText = outText.replace(p, ' ')
        outText = self.periodStrip.sub("",
                                      outText,
                                      re.UNICODE)
        return outText

    def processDigitArticle(self, inText):
        outText = []
        tempText = inText.lower().split()
        for word in tempText:
            word = self.manualMap.setdefault(word, word)
            if word not in self.articles:
                outText.append(word)
            else:
                pass
        for wordId, word in enumerate(outText):
            if word in self.contractions:
                outText[wordId] = self.contractions[word]
        outText = ' '.join(outText)
        return outText


OFFICIAL = OfficialVQAEval()

# Pieces that exercise every rule: the punctuation list and what is not in it (':', "'", '.', '#', '%'),
# contractions with ASCII / typographic / no apostrophes, number words, articles, hyphens, colons, digit commas
# and decimal points, brackets, whitespace, capitals and a few non-ASCII letters.
_PIECES = [
    "yes", "no", "dog", "red", "white", "man", "shirt", "t-shirt", "t shirt", "tshirt", "e-mail", "x-ray",
    "isn't", "isnt", "isn\u2019t", "dont", "don't", "don\u2019t", "cant", "can't", "weve", "we've", "oclock",
    "o'clock", "o\u2019clock", "man's", "man\u2019s", "its", "it's", "im", "Im", "I'm", "ive", "yall", "y'all",
    "10:30", "10 30", "1030", "3:00", "1,000", "1000", "1,5", "2.5", "2.50", "2", "two", "Two", "ten", "10",
    "none", "zero", "0", "one", "1", "eleven", "a", "an", "the", "The", "A", "An",
    "(yes)", "[1]", "{a}", "<b>", "a/b", "5-6", "#1", "50%", "$5", "@home", "a_b", "c++", "=", "\\", "`x`",
    '"quoted"', "\u201cquoted\u201d", "u.s.", "mr.", "...", "..", "-", "--", "!", "?", ",", ";", ":", ".",
    "caf\u00e9", "na\u00efve", "\u00c9t\u00e9", "\u2014", "2\u00bd",
]
_SEPARATORS = [" ", " ", " ", "", "-", ", ", ",", ":", "/", "  ", "\n", "\t", " - ", "!", "?", ". "]
_ENDINGS = ["", "", "", "", ".", "!", "?", ",", ":", ";", "...", " .", " !", "'", "\u2019", ")", " "]


def _text(rng: random.Random) -> str:
    words = [rng.choice(_PIECES) for _ in range(rng.choice([1, 1, 1, 2, 2, 3]))]
    text = words[0]
    for w in words[1:]:
        text += rng.choice(_SEPARATORS) + w
    text += rng.choice(_ENDINGS)
    if rng.random() < 0.2:
        text = text.upper() if rng.random() < 0.5 else text.capitalize()
    if rng.random() < 0.1:
        text = rng.choice([" ", "\n", "\t "]) + text + rng.choice([" ", "\n", ""])
    return text


def _variant(rng: random.Random, text: str) -> str:
    """A spelling of ``text`` that may or may not normalise to the same answer."""
    ops = [
        lambda t: t.capitalize(), lambda t: t.upper(), lambda t: t + rng.choice(_ENDINGS),
        lambda t: t.replace("-", " "), lambda t: t.replace(" ", "-"), lambda t: t.replace("'", ""),
        lambda t: t.replace("'", "\u2019"), lambda t: t.replace(":", " "), lambda t: "the " + t,
        lambda t: "a " + t, lambda t: t.replace(",", ""), lambda t: " " + t + "\n", lambda t: t,
    ]
    return rng.choice(ops)(text)


def generated_cases(n: int = N_CASES, seed: int = 17) -> list[tuple[str, list[str]]]:
    """(prediction, ten answers): answers drawn around a seed answer, so every match count occurs."""
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        seed_answer = _text(rng)
        if i % 10 == 0:  # all ten answers identical: where the documented deviation lives
            answers = [seed_answer] * 10
        else:
            answers = [_variant(rng, seed_answer) if rng.random() < 0.6 else _text(rng) for _ in range(10)]
        prediction = _variant(rng, rng.choice(answers)) if rng.random() < 0.8 else _text(rng)
        cases.append((prediction, answers))
    return cases


CASES = generated_cases()


def _official_normalise(text: str) -> str:
    return OFFICIAL.processDigitArticle(OFFICIAL.processPunctuation(text.replace("\n", " ").replace("\t", " ").strip()))


def _official_always_normalised(prediction: str, answers: list[str]) -> float:
    """The official score with the one documented deviation: both sides are always normalised (the official
    skips normalisation when all answers are one string). Same leave-one-out as ``evaluate_one``."""
    norm = [_official_normalise(a) for a in answers]
    pred = _official_normalise(prediction)
    accs = [min(1, float(sum(1 for j, b in enumerate(norm) if j != i and b == pred)) / 3) for i in range(len(norm))]
    return float(sum(accs)) / len(accs)


def test_generated_cases_cover_the_rules() -> None:
    scores = [vqa_accuracy(p, a) for p, a in CASES]
    # every leave-one-out value occurs (0, 0.3, 0.6, 0.9, 1 and the partial ones)
    assert {round(s, 1) for s in scores} >= {0.0, 0.3, 0.6, 0.9, 1.0}
    texts = [p for p, _ in CASES] + [a for _, ans in CASES for a in ans]
    for needle in ["-", ":", "'", "\u2019", "!", ",", ".", "the ", "two", "{", "\n"]:
        assert sum(needle in t for t in texts) > 100, needle


def test_matches_the_official_script_where_answers_differ() -> None:
    differing = [(p, a) for p, a in CASES if len({x.replace("\n", " ").replace("\t", " ").strip() for x in a}) > 1]
    assert len(differing) > 3000
    disagree = [(p, a) for p, a in differing if vqa_accuracy(p, a) != OFFICIAL.evaluate_one(p, a)]
    assert disagree == []


def test_matches_the_official_normalisation_with_the_documented_deviation() -> None:
    disagree = [(p, a) for p, a in CASES if vqa_accuracy(p, a) != _official_always_normalised(p, a)]
    assert disagree == []
    # the deviation is real and only there: identical answers, prediction spelled differently
    deviating = [(p, a) for p, a in CASES if vqa_accuracy(p, a) != OFFICIAL.evaluate_one(p, a)]
    assert deviating and all(len(set(a)) == 1 for _, a in deviating)


def test_normalisation_equals_the_official_functions() -> None:
    texts = {t for p, a in CASES for t in [p, *a]}
    assert [t for t in sorted(texts) if normalize_vqa_answer(t) != _official_normalise(t)] == []


NINE = ["yes"] * 9 + ["no"]


@pytest.mark.parametrize(("prediction", "answers", "expected"), [
    ("yes!", NINE, 1.0),  # '!' is official punctuation
    ("t-shirt", ["t shirt"] * 9 + ["shirt"], 1.0),  # '-' is official punctuation: 't-shirt' -> 't shirt'
    ("10 30", ["10:30"] * 9 + ["10"], 0.0),  # ':' is not: '10:30' stays
    ("10:30", ["10:30"] * 9 + ["10"], 1.0),
    ("isnt", ["isn't"] * 9 + ["no"], 1.0),  # the map writes the ASCII apostrophe
    ("isn't", ["isn't"] * 9 + ["no"], 1.0),  # "'" is not punctuation
    ("isn\u2019t", ["isn't"] * 9 + ["no"], 0.0),  # a typographic apostrophe is left alone
    ("{yes}", NINE, 1.0),
    ("Yes", ["yes"] * 10, 1.0),  # the documented deviation (official: 0)
])
def test_hand_cases(prediction: str, answers: list[str], expected: float) -> None:
    assert vqa_accuracy(prediction, answers) == pytest.approx(expected)
    if len(set(answers)) > 1:
        assert OFFICIAL.evaluate_one(prediction, answers) == pytest.approx(expected)
