"""VQA accuracy as defined by the official VQA evaluation, ported from GT-Vision-Lab/VQA at its latest
commit a013f0043c1e2cdc995922dfe257f7149aa9af06 ("Fixed processing answers bug", 2021-03-11),
``PythonEvaluationTools/vqaEvaluation/vqaEval.py``. The normalisation is the logic of its
``processPunctuation`` and ``processDigitArticle`` with its lists copied verbatim; a differential test
(tests/test_metrics_vqa_official.py) checks it against a line-by-line transcription of those functions on
thousands of generated answers. What that means in practice:

* The 21 characters in ``_PUNCT`` (``; / [ ] " { } ( ) = + \\ _ - > < @ ` , ? !``) are punctuation; ``:``
  and ``'`` are not, so ``"10:30"`` stays ``"10:30"`` and ``"isn't"`` stays ``"isn't"``. Each one is
  deleted when it touches a space somewhere in the text or when the text holds a digit-comma-digit
  (``"1,000"`` -> ``"1000"``), else replaced by a space (``"t-shirt"`` -> ``"t shirt"``).
* ``periodStrip`` is ``(?!<=\\d)(\\.)(?!\\d)``: the first group is a (mistyped) lookahead, so every
  period not followed by a digit is removed (``"2.5"`` keeps its period). The official call passes
  ``re.UNICODE`` (= 32) as the ``count`` argument, so at most 32 periods are removed.
* ``processDigitArticle`` lowercases, turns the number words ``none``/``zero``..``ten`` into digits, drops
  the articles ``a``/``an``/``the`` and maps contractions written without an apostrophe to the ASCII form
  (``"isnt"`` -> ``"isn't"``). A typographic apostrophe (U+2019) is left alone, so ``"isn’t"`` does not
  match ``"isn't"`` (as in the official script).
* ``\\d`` is Python 3's (any Unicode decimal digit), as in every Python 3 port of this file (EvalAI's,
  lmms-eval's ``EvalAIAnswerProcessor``); the Python 2 original matched only ``0-9`` there. The two differ
  only on answers holding non-ASCII digits next to a comma or a period.

One deliberate deviation, see :func:`vqa_accuracy`: both sides are always normalised.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

# The official ``contractions`` map, verbatim (keys with capitals can never match after lowercasing;
# also as in the original).
_CONTRACTIONS: dict[str, str] = {
    'aint': "ain't", 'arent': "aren't", 'cant': "can't", 'couldve': "could've", 'couldnt': "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", 'didnt': "didn't", 'doesnt': "doesn't",
    'dont': "don't", 'hadnt': "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", 'hasnt': "hasn't",
    'havent': "haven't", 'hed': "he'd", "hed've": "he'd've", "he'dve": "he'd've", 'hes': "he's",
    'howd': "how'd", 'howll': "how'll", 'hows': "how's", "Id've": "I'd've", "I'dve": "I'd've", 'Im': "I'm",
    'Ive': "I've", 'isnt': "isn't", 'itd': "it'd", "itd've": "it'd've", "it'dve": "it'd've", 'itll': "it'll",
    "let's": "let's", 'maam': "ma'am", 'mightnt': "mightn't", "mightnt've": "mightn't've",
    "mightn'tve": "mightn't've", 'mightve': "might've", 'mustnt': "mustn't", 'mustve': "must've",
    'neednt': "needn't", 'notve': "not've", 'oclock': "o'clock", 'oughtnt': "oughtn't", "ow's'at": "'ow's'at",
    "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", 'shant': "shan't", "shed've": "she'd've",
    "she'dve": "she'd've", "she's": "she's", 'shouldve': "should've", 'shouldnt': "shouldn't",
    "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": 'somebodyd',
    "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've", 'somebodyll': "somebody'll",
    'somebodys': "somebody's", 'someoned': "someone'd", "someoned've": "someone'd've",
    "someone'dve": "someone'd've", 'someonell': "someone'll", 'someones': "someone's",
    'somethingd': "something'd", "somethingd've": "something'd've", "something'dve": "something'd've",
    'somethingll': "something'll", 'thats': "that's", 'thered': "there'd", "thered've": "there'd've",
    "there'dve": "there'd've", 'therere': "there're", 'theres': "there's", 'theyd': "they'd",
    "theyd've": "they'd've", "they'dve": "they'd've", 'theyll': "they'll", 'theyre': "they're",
    'theyve': "they've", 'twas': "'twas", 'wasnt': "wasn't", "wed've": "we'd've", "we'dve": "we'd've",
    'weve': "we've", 'werent': "weren't", 'whatll': "what'll", 'whatre': "what're", 'whats': "what's",
    'whatve': "what've", 'whens': "when's", 'whered': "where'd", 'wheres': "where's", 'whereve': "where've",
    'whod': "who'd", "whod've": "who'd've", "who'dve": "who'd've", 'wholl': "who'll", 'whos': "who's",
    'whove': "who've", 'whyll': "why'll", 'whyre': "why're", 'whys': "why's", 'wont': "won't",
    'wouldve': "would've", 'wouldnt': "wouldn't", "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've",
    'yall': "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll", "yall'd've": "y'all'd've",
    "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", 'youd': "you'd", "youd've": "you'd've",
    "you'dve": "you'd've", 'youll': "you'll", 'youre': "you're", 'youve': "you've",
}  # fmt: skip

_NUMBER_WORDS: dict[str, str] = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
_ARTICLES = frozenset({"a", "an", "the"})
# The official ``punct`` list, in its order (the order matters: each character's test looks at the text
# as it was before any replacement, but replacements apply one after another).
_PUNCT: tuple[str, ...] = (
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!",
)  # fmt: skip
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")
_OFFICIAL_PERIOD_COUNT = int(re.UNICODE)  # the official passes re.UNICODE where `count` goes


def _process_punctuation(text: str) -> str:
    """VQAEval.processPunctuation."""
    out = text
    digit_comma = _COMMA_STRIP.search(text) is not None
    for p in _PUNCT:
        if p not in out:
            continue  # replacing an absent character is a no-op either way
        if digit_comma or (p + " " in text) or (" " + p in text):
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out, count=_OFFICIAL_PERIOD_COUNT)


def _process_digit_article(text: str) -> str:
    """VQAEval.processDigitArticle: lowercase, number words -> digits, drop articles, contractions."""
    words = []
    for word in text.lower().split():
        word = _NUMBER_WORDS.get(word, word)
        if word not in _ARTICLES:
            words.append(_CONTRACTIONS.get(word, word))
    return " ".join(words)


@lru_cache(maxsize=1 << 18)
def normalize_vqa_answer(text: str) -> str:
    """The official VQA normalisation of one answer string.

    Newlines and tabs become spaces, the text is stripped, then processPunctuation and
    processDigitArticle run as in vqaEval.py (see the module docstring for their exact rules).
    """
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return _process_digit_article(_process_punctuation(text))


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """VQA accuracy of one prediction against the human answers, in [0, 1].

    The average over the leave-one-out subsets of ``answers`` (one per annotator) of
    ``min(1, #others equal to the prediction / 3)``: with 10 answers, 1/2/3/4+ matching
    annotators give 0.3/0.6/0.9/1.0.

    Both the prediction and every ground-truth answer are normalised with ``normalize_vqa_answer``,
    as the official script does whenever the answers are not all identical. The one deliberate
    deviation: the official skips normalisation of both sides when all answers are the same string,
    so "Yes" against ten "yes" scores 0 there; here normalisation is always applied.

    Raises ValueError for fewer than 2 answers: leave-one-out over a single answer leaves
    nobody to agree with, so the formula would score every prediction 0. Single-answer
    datasets (GQA) use their own exact match instead (:func:`gqa_exact_match`).
    """
    if len(answers) < 2:
        raise ValueError(
            f"vqa_accuracy needs at least 2 ground-truth answers (leave-one-out), got {len(answers)}; "
            "for single-answer datasets (GQA) use gqa_exact_match()"
        )
    pred = normalize_vqa_answer(prediction)
    matches = [normalize_vqa_answer(a) == pred for a in answers]
    total_matches = sum(matches)
    if total_matches == 0:
        return 0.0
    acc_sum = 0.0
    for is_match in matches:  # summed in order, as the official script does
        acc_sum += min(1.0, float(total_matches - is_match) / 3)
    return acc_sum / len(matches)


def gqa_answer(prediction: str) -> str:
    """A generation as LLaVA's ``scripts/convert_gqa_for_eval.py`` writes it into GQA's predictions file:
    stripped (LLaVA's ``model_vqa_loader`` strips outputs), trailing periods removed (``rstrip('.')``),
    lowercased. Matched against haotian-liu/LLaVA at its latest commit c121f0432da27facab705978f83c4ada465e46fd
    (the script last changed in ce1aa08). The conversion the LLaVA, Qwen-VL and InternVL papers' GQA numbers went through."""
    return prediction.strip().rstrip(".").lower()


def gqa_exact_match(prediction: str, answer: str) -> float:
    """GQA accuracy of one prediction, 1.0 or 0.0: GQA's official ``eval.py`` compares
    ``predicted == gold`` exactly, the prediction being :func:`gqa_answer` of the generation and the
    gold answer the dataset's string as it is (GQA's answers are lowercase words without punctuation)."""
    return float(gqa_answer(prediction) == answer)
