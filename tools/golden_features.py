#!/usr/bin/env python3
"""Golden SQuAD features and decodes for tests/test_squad_features.c and tests/test_decode.c.

An independent Python implementation of the original BERT run_squad.py pipeline (read_squad_examples,
convert_examples_to_features, write_predictions, get_final_text), written from
/work/shared/notes/squad-pipeline.md, using the Hugging Face slow BertTokenizer (transformers 4.57.1,
do_lower_case=True) as the tokenizer.

Rerun (from the repository root, a few minutes):
    tools/setup-pyenv.sh      # once, creates .venv-tools
    .venv-tools/bin/python tools/golden_features.py \
        --dev /work/shared/data/squad/dev-v1.1.json --vocab vocab/vocab.txt --out tests/data/features

Outputs (all gzip'd, one header line starting with '#' holding the options):
  dev_default.tsv.gz   every dev question, options 384/64/128 (max_seq_length/max_query_length/stride)
  dev_small.tsv.gz     every 5th dev question, options 128/16/64
  dev_nooverlap.tsv.gz every 25th dev question, options 96/24/200 (stride longer than a window)
  Feature line (tab-separated): qid, window index, n_tokens, real input_ids (space-separated),
  index of the first segment-1 token, max-context flags over the window's document part as a 0/1
  string, token_to_word over the document part (space-separated).

  decode.jsonl.gz      500 dev questions (every 21st) decoded from seeded pseudo-random logits
  (splitmix64, see logits_for below; tests/test_decode.c regenerates the same numbers). One JSON object
  per line: qid, seed, mode ("ties": logits in {-2,-1.5,...,2}; "cont": float32 in [-8,8)), n_best,
  max_answer_length, nbest: [{text, char_start, char_end, start_logit, end_logit, probability}].
  The answer text is cut from the original context: get_final_text's result mapped back to context
  code-point offsets (the original returns words re-joined by single spaces; where the context has other
  whitespace between the words the context substring keeps it). Duplicates are removed on the
  original's text, as write_predictions does.
"""
import argparse
import collections
import gzip
import json
import math
import os

import numpy as np
from transformers import BertTokenizer
from transformers.models.bert.tokenization_bert import BasicTokenizer

MASK64 = (1 << 64) - 1


def is_whitespace(c):
    return c in (" ", "\t", "\r", "\n") or ord(c) == 0x202F


def split_context(text):
    """Words of the context and each word's code-point start offset."""
    words, starts = [], []
    prev_ws = True
    for i, c in enumerate(text):
        if is_whitespace(c):
            prev_ws = True
            continue
        if prev_ws:
            words.append(c)
            starts.append(i)
        else:
            words[-1] += c
        prev_ws = False
    return words, starts


class Context:
    def __init__(self, tokenizer, text):
        self.text = text
        self.words, self.word_starts = split_context(text)
        self.pieces, self.piece_word = [], []
        for wi, w in enumerate(self.words):
            for p in tokenizer.tokenize(w):
                self.pieces.append(p)
                self.piece_word.append(wi)


DocSpan = collections.namedtuple("DocSpan", ["start", "length"])


def doc_spans_for(n_pieces, room, stride):
    spans = []
    start = 0
    while start < n_pieces:
        length = min(n_pieces - start, room)
        spans.append(DocSpan(start, length))
        if start + length == n_pieces:
            break
        start += min(length, stride)
    return spans


def is_max_context(spans, cur, position):
    best_score, best_index = None, None
    for i, s in enumerate(spans):
        end = s.start + s.length - 1
        if position < s.start or position > end:
            continue
        score = min(position - s.start, end - position) + 0.01 * s.length
        if best_score is None or score > best_score:
            best_score, best_index = score, i
    return cur == best_index


Feature = collections.namedtuple(
    "Feature", ["tokens", "input_ids", "first_seg1", "doc_offset", "token_to_word", "max_context"])


def build_features(tokenizer, question, ctx, max_seq, max_query, stride):
    q = tokenizer.tokenize(question)[:max_query]
    room = max_seq - len(q) - 3
    assert room > 0
    spans = doc_spans_for(len(ctx.pieces), room, stride)
    feats = []
    for si, s in enumerate(spans):
        tokens = ["[CLS]"] + q + ["[SEP]"]
        doc_offset = len(tokens)
        t2w, maxc = [], []
        for i in range(s.length):
            p = s.start + i
            tokens.append(ctx.pieces[p])
            t2w.append(ctx.piece_word[p])
            maxc.append(is_max_context(spans, si, p))
        tokens.append("[SEP]")
        ids = tokenizer.convert_tokens_to_ids(tokens)
        assert len(ids) <= max_seq
        feats.append(Feature(tokens, ids, doc_offset, doc_offset, t2w, maxc))
    return feats


# ---- decoding (write_predictions / get_final_text) -------------------------------------------------

def best_indexes(logits, n):
    order = sorted(enumerate(logits), key=lambda x: x[1], reverse=True)
    return [i for i, _ in order[:n]]


def strip_spaces(text):
    ns, ns_to_s = [], {}
    for i, c in enumerate(text):
        if c == " ":
            continue
        ns_to_s[len(ns)] = i
        ns.append(c)
    return "".join(ns), ns_to_s


BASIC = BasicTokenizer(do_lower_case=True)


def final_text_span(pred_text, orig_text):
    """get_final_text, returning the [start, end] (inclusive) code points of orig_text it keeps."""
    whole = (0, len(orig_text) - 1)
    tok_text = " ".join(BASIC.tokenize(orig_text))
    start = tok_text.find(pred_text)
    if start == -1:
        return whole
    end = start + len(pred_text) - 1
    orig_ns, orig_ns_to_s = strip_spaces(orig_text)
    tok_ns, tok_ns_to_s = strip_spaces(tok_text)
    if len(orig_ns) != len(tok_ns):
        return whole
    tok_s_to_ns = {s: n for n, s in tok_ns_to_s.items()}
    if start not in tok_s_to_ns or tok_s_to_ns[start] not in orig_ns_to_s:
        return whole
    if end not in tok_s_to_ns or tok_s_to_ns[end] not in orig_ns_to_s:
        return whole
    return orig_ns_to_s[tok_s_to_ns[start]], orig_ns_to_s[tok_s_to_ns[end]]


def softmax(scores):
    m = max(scores)
    e = [math.exp(s - m) for s in scores]
    t = sum(e)
    return [x / t for x in e]


def decode(ctx, feats, starts, ends, n_best, max_answer_length):
    prelim = []
    for fi, f in enumerate(feats):
        n_tok = len(f.tokens)
        for s in best_indexes(starts[fi], n_best):
            for e in best_indexes(ends[fi], n_best):
                if s >= n_tok or e >= n_tok:
                    continue
                ds, de = s - f.doc_offset, e - f.doc_offset
                if ds < 0 or ds >= len(f.token_to_word) or de < 0 or de >= len(f.token_to_word):
                    continue
                if not f.max_context[ds]:
                    continue
                if e < s or e - s + 1 > max_answer_length:
                    continue
                prelim.append((fi, s, e, starts[fi][s], ends[fi][e]))
    prelim = sorted(prelim, key=lambda x: x[3] + x[4], reverse=True)
    seen, nbest = set(), []
    for fi, s, e, sl, el in prelim:
        if len(nbest) >= n_best:
            break
        f = feats[fi]
        tok_text = " ".join(f.tokens[s:e + 1])
        tok_text = tok_text.replace(" ##", "").replace("##", "")
        tok_text = " ".join(tok_text.strip().split())
        w0 = f.token_to_word[s - f.doc_offset]
        w1 = f.token_to_word[e - f.doc_offset]
        orig_text = " ".join(ctx.words[w0:w1 + 1])
        a, b = final_text_span(tok_text, orig_text)
        original_final = orig_text[a:b + 1]
        if original_final in seen:
            continue
        seen.add(original_final)
        # Map orig_text code points back to the context.
        pos_map = []
        for wi in range(w0, w1 + 1):
            if wi > w0:
                pos_map.append(None)
            pos_map.extend(ctx.word_starts[wi] + j for j in range(len(ctx.words[wi])))
        cs, ce = pos_map[a], pos_map[b] + 1
        text = ctx.text[cs:ce]
        nbest.append({"text": text, "char_start": cs, "char_end": ce,
                      "start_logit": sl, "end_logit": el})
    if not nbest:
        nbest.append({"text": "empty", "char_start": -1, "char_end": -1,
                      "start_logit": 0.0, "end_logit": 0.0})
    probs = softmax([x["start_logit"] + x["end_logit"] for x in nbest])
    for x, p in zip(nbest, probs):
        x["probability"] = p
    return nbest


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)


def logits_for(seed, mode, n_windows, max_seq):
    """Per window: max_seq start logits, then max_seq end logits, from one splitmix64 stream."""
    rng = SplitMix64(seed)

    def one():
        z = rng.next()
        if mode == "ties":
            return ((z >> 33) % 9) * 0.5 - 2.0
        return float(np.float32((z >> 11) * (1.0 / 9007199254740992.0) * 16.0 - 8.0))

    starts, ends = [], []
    for _ in range(n_windows):
        starts.append([one() for _ in range(max_seq)])
        ends.append([one() for _ in range(max_seq)])
    return starts, ends


# ---- driver ----------------------------------------------------------------------------------------

def load_questions(path):
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)["data"]
    out = []
    for article in data:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                out.append((qa["id"], qa["question"], para["context"]))
    return out


def write_features(path, tokenizer, questions, contexts, max_seq, max_query, stride):
    n = 0
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as out:
        out.write(f"# max_seq_length={max_seq} max_query_length={max_query} doc_stride={stride}"
                  f" questions={len(questions)}\n")
        for qid, question, context in questions:
            ctx = contexts[context]
            for wi, f in enumerate(build_features(tokenizer, question, ctx, max_seq, max_query,
                                                  stride)):
                out.write("\t".join([
                    qid, str(wi), str(len(f.input_ids)), " ".join(map(str, f.input_ids)),
                    str(f.first_seg1), "".join("1" if m else "0" for m in f.max_context),
                    " ".join(map(str, f.token_to_word))]) + "\n")
                n += 1
    print(f"{path}: {len(questions)} questions, {n} features")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dev", required=True)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    tokenizer = BertTokenizer(args.vocab, do_lower_case=True)
    questions = load_questions(args.dev)
    contexts = {}
    for _, _, c in questions:
        if c not in contexts:
            contexts[c] = Context(tokenizer, c)

    write_features(os.path.join(args.out, "dev_default.tsv.gz"), tokenizer, questions, contexts,
                   384, 64, 128)
    write_features(os.path.join(args.out, "dev_small.tsv.gz"), tokenizer, questions[::5], contexts,
                   128, 16, 64)
    write_features(os.path.join(args.out, "dev_nooverlap.tsv.gz"), tokenizer, questions[::25],
                   contexts, 96, 24, 200)

    sample = questions[::21][:500]
    with gzip.open(os.path.join(args.out, "decode.jsonl.gz"), "wt", encoding="utf-8",
                   compresslevel=9) as out:
        for seed, (qid, question, context) in enumerate(sample):
            ctx = contexts[context]
            mode = "ties" if seed % 2 == 0 else "cont"
            n_best, max_len = (20, 30) if seed % 5 else (5, 10)
            feats = build_features(tokenizer, question, ctx, 384, 64, 128)
            starts, ends = logits_for(seed, mode, len(feats), 384)
            nbest = decode(ctx, feats, starts, ends, n_best, max_len)
            out.write(json.dumps({"qid": qid, "seed": seed, "mode": mode, "n_best": n_best,
                                  "max_answer_length": max_len, "nbest": nbest},
                                 ensure_ascii=False) + "\n")
    print(f"decode.jsonl.gz: {len(sample)} questions")


if __name__ == "__main__":
    main()
