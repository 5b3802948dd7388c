#!/usr/bin/env python3
"""Independent reference for the official SQuAD v1.1 EM / F1 metric.

Written from the rule description in shared/data/squad/EVAL_NOTES.md (our own code, not the
official script). It relies on Python's own str.lower(), str.split() and re's Unicode \\b, which
are exactly what the official evaluate-v1.1.py uses, so it is the oracle for the C
implementation in src/squad_eval.c.

Usage (either interpreter works; only the standard library is used):
    /work/main/.venv-tools/bin/python tools/squad_eval_reference.py DATASET.json PREDICTIONS.json
Prints one JSON line {"exact_match": x, "f1": y} (percentages, full precision) like the official
script; a file name ending in .gz is decompressed first.
"""
import collections
import gzip
import json
import re
import sys

PUNCTUATION = set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~')  # Python's string.punctuation
ARTICLE_WORD = re.compile(r'\b(?:a|an|the)\b')


def normalize(text):
    """Lower-case, drop ASCII punctuation, blank out whole-word articles, collapse whitespace."""
    lowered = text.lower()
    kept = ''.join(ch for ch in lowered if ch not in PUNCTUATION)
    no_articles = ARTICLE_WORD.sub(' ', kept)
    return ' '.join(no_articles.split())


def exact(prediction, gold):
    return int(normalize(prediction) == normalize(gold))


def f1(prediction, gold):
    pred_tokens = normalize(prediction).split()
    gold_tokens = normalize(gold).split()
    overlap = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
    shared = sum(overlap.values())
    if shared == 0:
        return 0.0
    precision = 1.0 * shared / len(pred_tokens)
    recall = 1.0 * shared / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


def load_json(path):
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rt', encoding='utf-8') as f:
        return json.load(f)


def evaluate(dataset, predictions):
    """dataset: the 'data' list; predictions: dict id -> text. Returns (em%, f1%, n_answered)."""
    em_sum = 0
    f1_sum = 0.0
    count = 0
    answered = 0
    for article in dataset:
        for paragraph in article['paragraphs']:
            for qa in paragraph['qas']:
                count += 1
                if qa['id'] not in predictions:
                    continue
                answered += 1
                golds = [ans['text'] for ans in qa['answers']]
                pred = predictions[qa['id']]
                em_sum += max(exact(pred, g) for g in golds)
                f1_sum += max(f1(pred, g) for g in golds)
    return 100.0 * em_sum / count, 100.0 * f1_sum / count, answered


def main(argv):
    if len(argv) != 3:
        sys.stderr.write('usage: squad_eval_reference.py DATASET.json PREDICTIONS.json\n')
        return 2
    em, f1_score, _ = evaluate(load_json(argv[1])['data'], load_json(argv[2]))
    print(json.dumps({'exact_match': em, 'f1': f1_score}))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
