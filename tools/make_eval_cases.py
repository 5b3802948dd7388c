#!/usr/bin/env python3
"""Generate the SQuAD evaluation goldens in tests/data/eval/ from tools/squad_eval_reference.py.

Rerun from the repository root (deterministic; seeded):
    /work/main/.venv-tools/bin/python tools/make_eval_cases.py
Needs tests/data/squad/dev-v1.1.json.gz (gzip -9 of the SQuAD v1.1 dev set).

Writes:
  pred_<case>.json.gz     prediction files (id -> answer) against the dev set
  expected_scores.txt     "<file> <exact_match> <f1> <n_answered>" per prediction file, repr()
  pairs.jsonl             [prediction, gold, normalized prediction, normalized gold, em, f1] per line
  unicode_classes.txt     how CPython classifies every code point for the metric (see below)
"""
import gzip
import json
import os
import random
import sys
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import squad_eval_reference as ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'tests', 'data', 'eval')
DATASET = os.path.join(ROOT, 'tests', 'data', 'squad', 'dev-v1.1.json.gz')


def questions(data):
    for article in data:
        for paragraph in article['paragraphs']:
            for qa in paragraph['qas']:
                yield paragraph['context'], qa


def write_gz(name, text):
    with open(os.path.join(OUT, name), 'wb') as raw:
        with gzip.GzipFile(filename='', mode='wb', fileobj=raw, mtime=0, compresslevel=9) as f:
            f.write(text.encode('utf-8'))


# ---- answer transformations -------------------------------------------------------------------

FULLWIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}
UNICODE_SPACES = ['\u00a0', '\u2009', '\u3000', '\u202f', '\u2028', '\t', '\n', '\x1c', '\u200b',
                  '\u180e', '\u0085']


def unicode_variant(text, rng):
    kind = rng.randrange(10)
    if kind == 0:
        return unicodedata.normalize('NFD', text)            # accents as combining marks
    if kind == 1:
        return text.replace("'", '\u2019').replace('"', '\u201c')  # curly quotes
    if kind == 2:
        return ''.join(FULLWIDTH.get(c, c) for c in text)     # fullwidth ASCII
    if kind == 3:
        return '\u0130' + text                                 # capital I with dot above
    if kind == 4:
        return text.replace(' ', rng.choice(UNICODE_SPACES))  # non-ASCII / odd whitespace
    if kind == 5:
        return text.replace('-', '\u2013').replace('\u2013', rng.choice(['-', '\u2014', '\u2013']))
    if kind == 6:
        return text.upper()                                    # ß -> SS, ligatures, ...
    if kind == 7:
        return rng.choice(['\u00c0 ', 'ΟΔΟΣ ', 'the\u00e9 ', 'a\u0301 ', '\u212a ']) + text
    if kind == 8:
        return unicodedata.normalize('NFKC', text)
    return text + rng.choice(['\u3002', '\uff0e', '\u00bf', ' \u00b7', '\u2026'])


WRAPPERS = ['The {}.', 'the {},', '"{}"', 'an {}!', '({})', 'A {}?', '{} the', 'THE {}',
            '_the_ {}', 'the-{}', "{}'s", 'a\t{}\n', '  {}  ', '{}.the', 'then {}', 'the{}']


def wrapped(text, rng):
    return rng.choice(WRAPPERS).format(text)


def partial(context, qa, rng):
    ans = rng.choice(qa['answers'])
    start, end = ans['answer_start'], ans['answer_start'] + len(ans['text'])
    words = ans['text'].split()
    kind = rng.randrange(4)
    if kind == 0 and len(words) > 1:
        return ' '.join(words[1:])
    if kind == 1 and len(words) > 1:
        return ' '.join(words[:-1])
    if kind == 2:
        return context[max(0, start - rng.randrange(1, 25)):end]
    return context[start:min(len(context), end + rng.randrange(1, 25))]


def context_span(context, rng):
    words = context.split()
    i = rng.randrange(len(words))
    return ' '.join(words[i:i + rng.randrange(1, 6)])


def make_cases(items):
    """Returns {case name: list of (id, answer)}; order is the written order."""
    rng = random.Random(20240611)
    all_answers = [a['text'] for _, qa in items for a in qa['answers']]
    # Only exact_first and mix_seed1 cover the whole dev set; the rest use samples so that the
    # committed files stay small.
    subset = rng.sample(items, 1500)
    medium = rng.sample(items, 3000)
    cases = {}
    cases['exact_first'] = [(qa['id'], qa['answers'][0]['text']) for _, qa in items]
    cases['exact_last'] = [(qa['id'], qa['answers'][-1]['text']) for _, qa in subset]
    cases['wrapped'] = [(qa['id'], wrapped(qa['answers'][0]['text'], rng)) for _, qa in medium]
    cases['partial'] = [(qa['id'], partial(c, qa, rng)) for c, qa in medium]
    cases['empty'] = [(qa['id'], '') for _, qa in subset]
    cases['unicode'] = [(qa['id'], unicode_variant(rng.choice(qa['answers'])['text'], rng))
                        for _, qa in medium]
    cases['missing_half'] = [(qa['id'], qa['answers'][0]['text']) for _, qa in subset
                             if rng.random() < 0.5]
    extra = [('%024x' % rng.getrandbits(96), rng.choice(all_answers)) for _ in range(300)]
    extra += [(qa['id'] + ' ', qa['answers'][0]['text']) for _, qa in subset[:100]]
    cases['extra_ids'] = [(qa['id'], qa['answers'][0]['text']) for _, qa in subset] + extra
    rng.shuffle(cases['extra_ids'])
    cases['other_answers'] = [(qa['id'], rng.choice(all_answers)) for _, qa in medium]
    cases['context_spans'] = [(qa['id'], context_span(c, rng)) for c, qa in subset]
    cases['upper_nfd'] = [(qa['id'], unicodedata.normalize('NFD', qa['answers'][0]['text'].upper()))
                          for _, qa in subset]
    for seed in (1, 2, 3):
        mix_rng = random.Random(seed)
        mix = []
        for c, qa in (items if seed == 1 else medium):
            if mix_rng.random() < 0.15:
                continue  # unanswered
            gold = mix_rng.choice(qa['answers'])['text']
            choice = mix_rng.randrange(7)
            if choice == 0:
                mix.append((qa['id'], gold))
            elif choice == 1:
                mix.append((qa['id'], wrapped(gold, mix_rng)))
            elif choice == 2:
                mix.append((qa['id'], partial(c, qa, mix_rng)))
            elif choice == 3:
                mix.append((qa['id'], unicode_variant(gold, mix_rng)))
            elif choice == 4:
                mix.append((qa['id'], context_span(c, mix_rng)))
            elif choice == 5:
                mix.append((qa['id'], mix_rng.choice(all_answers)))
            else:
                mix.append((qa['id'], ''))
        mix_rng.shuffle(mix)
        cases['mix_seed%d' % seed] = mix
    return cases


def duplicate_keys_json(items, rng):
    """A predictions object that repeats ids: Python's json keeps the last value of each."""
    sample = rng.sample(items, 400)
    parts = []
    for _, qa in sample:
        gold = qa['answers'][0]['text']
        first, last = (gold, 'wrong answer') if rng.random() < 0.5 else ('wrong answer', gold)
        parts.append('%s: %s' % (json.dumps(qa['id']), json.dumps(first)))
        parts.append('%s: %s' % (json.dumps(qa['id']), json.dumps(last)))
    return '{' + ', '.join(parts) + '}'


# ---- per-pair cases ---------------------------------------------------------------------------

PAIRS = [
    ('The U.S. Army', 'us army'), ('an apple, the\tpear', 'apple pear'), ('the', ''), ('', ''),
    ('cat cat dog', 'cat dog dog'), ('Denver Broncos', 'denver broncos'), ('theatre', 'atre'),
    ('and', 'a nd'), ('state-of-the-art', 'stateoftheart'), ('1990-91', '199091'),
    ('the,', ''), ('(the) a, an.', ''), ('A-the-An', 'atheAn'), ('The_the', 'thethe'),
    ('the_ the', ''), ('\u0130stanbul', 'i\u0307stanbul'), ('\u0130stanbul', 'istanbul'),
    ('\u0130', 'i'), ('the\u0130', 'thei'), ('a\u0130', 'ai\u0307'),
    ('\u039f\u0394\u039f\u03a3', '\u03bf\u03b4\u03bf\u03c2'),
    ('\u039f\u0394\u039f\u03a3', '\u03bf\u03b4\u03bf\u03c3'),
    ('\u03a3', '\u03c3'), ('\u03a3\u039f', '\u03c3\u03bf'), ('\u0391\u03a3.', '\u03b1\u03c2'),
    ('\u0391\u03a3\u0301', '\u03b1\u03c2\u0301'), ('\u0391\u03a3\u0301\u0392', '\u03b1\u03c3\u0301\u03b2'),
    ('\u0391.\u03a3', '\u03b1\u03c2'), ("\u0391'\u03a3", '\u03b1\u03c2'), ('\u0391:\u03a3b', '\u03b1\u03c3b'),
    ('1\u03a3', '1\u03c3'), ('\u00aa\u03a3', '\u00aa\u03c2'), ('\u24b6\u03a3', '\u24d0\u03c2'),
    ('\u0391\u00ad\u03a3', '\u03b1\u00ad\u03c2'), ('\u0391 \u03a3', '\u03b1 \u03c3'),
    ('\u212a', 'k'), ('\u2126', '\u03c9'), ('\u00c5ngstr\u00f6m', '\u00e5ngstr\u00f6m'),
    ('STRASSE', 'stra\u00dfe'), ('\u1e9e', '\u00df'), ('\ufb01', 'fi'), ('\u01c5', '\u01c6'),
    ('the\u00e9', 'the\u00e9'), ('\u00e9the', ''), ('the \u00e9', '\u00e9'), ('th\u00e9', 'the'),
    ('a\u0301', '\u0301'), ('a\u0301 b', 'b'), ('\u0301a', ''), ('the\u0300', ''),
    ('the\u00b2', 'the'), ('\u00b2the', ''), ('the\u2160', ''), ('\u2160the', ''), ('the5', '5'),
    ('5the', ''), ('the\u0660', ''), ('\u0663the', ''), ('the\u00bd', ''), ('the\u30fc', ''),
    ('\u4e00the', ''), ('the\u4e00', ''), ('the\u3000a\u3000an', ''), ('a\u00a0b', 'b'),
    ('x\u2009y', 'x y'), ('x\u200by', 'x y'), ('x\u180ey', 'x y'), ('x\u0085y', 'x y'),
    ('x\x1cy', 'x y'), ('x\x1fy', 'x y'), ('x\u2028y', 'x y'), ('x\ufeffy', 'x y'),
    ('\u201cthe\u201d', '\u201c \u201d'), ('\u2018a\u2019', ''), ("\u2019s", 's'), ("'s", 's'),
    ('the\u2013art', 'art'), ('the\u2014', ''), ('\u20ac5', '5'), ('\u00bfthe?', '\u00bf'),
    ('\uff34\uff28\uff25', 'the'), ('\uff54\uff48\uff45', ''), ('the\u3002', ''),
    ('An An an', ''), ('aa an ann', 'aa ann'), ('the the the x the', 'x'),
    ('Barack Obama', 'Obama'), ('Obama', 'Barack Obama'), ('a b c d', 'b c d e'),
    ('x x x y', 'x y y y'), ('New York City', 'new york'), ('24\u201310', '24\u201310'),
    ('24-10', '24\u201310'), ('5\u00bd', '5\u00bd'), ('Beyonce\u0301', 'Beyonc\u00e9'),
    ('\u00c9COLE', '\u00e9cole'), ('\u0130I\u0131i', 'i\u0307i\u0131i'), ('\u0049\u0307', 'i\u0307'),
    ('\U0001d400', '\U0001d400'), ('the\U0001d400', ''), ('\U00010400', '\U00010428'),
    ('the\U0001f600', ''), ('\U0001f600the', ''), ('the\U00016a70', ''),
    ('\u1f88', '\u1f80'), ('\u0345\u03a3', '\u0345\u03c3'), ('\u1d2c\u03a3', '\u1d2c\u03c2'),
    ('\t\n the \r\x0b\x0c', ''),
]


def pair_cases():
    rows = []
    for pred, gold in PAIRS:
        rows.append([pred, gold, ref.normalize(pred), ref.normalize(gold), ref.exact(pred, gold),
                     ref.f1(pred, gold)])
    return rows


# ---- Unicode classification -------------------------------------------------------------------

def ranges(codepoints):
    out = []
    for c in codepoints:
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def unicode_classes():
    """Every non-surrogate code point assigned in this Python's Unicode database is either a
    word character (\\w), whitespace (str.isspace) or other, and lowers (in the text "the" + c)
    to some string; normalize("the" + c) then follows from these facts. The case-ignorable and
    cased classes decide how a neighbouring capital sigma lowers. Asserted here against
    the reference itself so the C test can rebuild the expectation from the table."""
    assigned, word, space, lower, ignorable, cased = [], [], [], [], [], []
    for c in range(0x110000):
        if 0xD800 <= c <= 0xDFFF:
            continue
        ch = chr(c)
        if unicodedata.category(ch) == 'Cn':
            continue
        assigned.append(c)
        is_word = ch.isalnum() or ch == '_'
        if is_word:
            word.append(c)
        if ch.isspace():
            space.append(c)
        lowered = ('the' + ch).lower()[3:]
        if lowered != ch:
            lower.append((c, lowered))
        if ch in ref.PUNCTUATION or ch.isspace():
            expect = ''
        elif is_word:
            expect = 'the' + lowered
        else:
            expect = lowered
        assert ref.normalize('the' + ch) == expect, hex(c)
        # Capital sigma lowers to final sigma after a cased letter not followed by one, skipping
        # case-ignorable characters. Observed here through lower(): c + "Σ" ends in final
        # sigma exactly when c is cased and not case-ignorable; "A" + c + "Σ" exactly when c is
        # case-ignorable or cased.
        sigma_after_c = (ch + '\u03a3').lower()[-1] == '\u03c2'
        sigma_after_letter_c = ('A' + ch + '\u03a3').lower()[-1] == '\u03c2'
        is_ignorable = sigma_after_letter_c and not sigma_after_c
        if is_ignorable:
            ignorable.append(c)
        elif sigma_after_c:
            cased.append(c)
        final_before = is_ignorable or sigma_after_c
        final_after = is_ignorable or not sigma_after_c
        assert ref.normalize('\u0391' + ch + '\u03a3').endswith('\u03c2' if final_before else '\u03c3'), hex(c)
        assert ref.normalize('\u0391\u03a3' + ch).startswith('\u03b1\u03c2' if final_after else '\u03b1\u03c3'), hex(c)
    lines = ['# CPython %s, Unicode %s: assigned / word / space / case-ignorable / cased (when not '
             'ignorable) ranges, "lower CP HEX..." entries'
             % (sys.version.split()[0], unicodedata.unidata_version)]
    lines += ['assigned %x %x' % tuple(r) for r in ranges(assigned)]
    lines += ['word %x %x' % tuple(r) for r in ranges(word)]
    lines += ['space %x %x' % tuple(r) for r in ranges(space)]
    lines += ['ignorable %x %x' % tuple(r) for r in ranges(ignorable)]
    lines += ['cased %x %x' % tuple(r) for r in ranges(cased)]
    lines += ['lower %x %s' % (c, ' '.join('%x' % ord(x) for x in s)) for c, s in lower]
    return '\n'.join(lines) + '\n'


def main():
    os.makedirs(OUT, exist_ok=True)
    data = ref.load_json(DATASET)['data']
    items = list(questions(data))
    cases = make_cases(items)
    scores = []
    for name, entries in cases.items():
        fname = 'pred_%s.json.gz' % name
        write_gz(fname, json.dumps(dict(entries), ensure_ascii=False))
        predictions = ref.load_json(os.path.join(OUT, fname))
        em, f1, answered = ref.evaluate(data, predictions)
        scores.append('%s %r %r %d' % (fname, em, f1, answered))
    fname = 'pred_duplicate_ids.json.gz'
    write_gz(fname, duplicate_keys_json(items, random.Random(7)))
    em, f1, answered = ref.evaluate(data, ref.load_json(os.path.join(OUT, fname)))
    scores.append('%s %r %r %d' % (fname, em, f1, answered))
    with open(os.path.join(OUT, 'expected_scores.txt'), 'w') as f:
        f.write('# <predictions file> <exact_match> <f1> <n_answered>, from '
                'tools/squad_eval_reference.py on tests/data/squad/dev-v1.1.json.gz\n')
        f.write('\n'.join(scores) + '\n')
    with open(os.path.join(OUT, 'pairs.jsonl'), 'w') as f:
        for row in pair_cases():
            f.write(json.dumps(row) + '\n')
    with open(os.path.join(OUT, 'unicode_classes.txt'), 'w') as f:
        f.write(unicode_classes())
    print('\n'.join(scores))


if __name__ == '__main__':
    main()
