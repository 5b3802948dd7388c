/* squad_options.h - the SQuAD pipeline's settings, shared by features, decoding and the CLI. */
#ifndef BQ_SQUAD_OPTIONS_H
#define BQ_SQUAD_OPTIONS_H

typedef struct {
    int max_seq_length;    /* 384: padded window length */
    int max_query_length;  /* 64: question pieces kept */
    int doc_stride;        /* 128: step between window starts (not HF's overlap) */
    int n_best;            /* 20: start/end candidates per window, answers kept */
    int max_answer_length; /* 30: longest answer in pieces */
    /* 0: every window runs padded to max_seq_length and decoding ranks all its positions, as the
     * original run_squad.py does. N > 0: windows are sorted by real length and each engine batch
     * runs at its longest window's length rounded up to a multiple of N; padding positions are
     * then never n-best candidates (as in Hugging Face's pipeline), so an answer does not depend
     * on which windows share its batch. */
    int length_bucket;
    /* 1: windows run packed, back to back with no padding, each attending to itself only (the
     * MLPerf way; bq_engine_forward_packed). Padding is never an answer, as with length_bucket;
     * the two are alternatives. */
    int pack;
} bq_squad_options;

#define BQ_SQUAD_OPTIONS_DEFAULT {384, 64, 128, 20, 30, 0, 0}

#endif
