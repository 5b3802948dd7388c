/* cmd_eval.c - bertqa-gpu eval: the official SQuAD v1.1 EM/F1 of a predictions file. */
#include "cli.h"
#include "squad_data.h"
#include "squad_eval.h"

int cmd_eval(const cli_args *a) {
    bq_err err;
    bq_err_clear(&err);
    bq_squad_dataset *ds = NULL;
    bq_predictions *pred = NULL;
    bq_squad_scores scores;
    bq_status st = bq_squad_load(a->value[OPT_DATA], BQ_SQUAD_STRICT, &ds, &err);
    if (st == BQ_OK) st = bq_predictions_load(a->value[OPT_PREDICTIONS], &pred, &err);
    if (st == BQ_OK) st = bq_squad_evaluate(ds, pred, &scores, &err);
    if (st == BQ_OK) {
        if (scores.n_answered < scores.n_questions)
            fprintf(stderr, "bertqa-gpu eval: %d of %d questions have no prediction and score 0\n",
                    scores.n_questions - scores.n_answered, scores.n_questions);
        cli_print_scores(stdout, scores.exact_match, scores.f1);
    } else {
        cli_error("eval", "%s", err.message);
    }
    bq_squad_free(ds);
    bq_predictions_free(pred);
    return cli_exit_status(st);
}
