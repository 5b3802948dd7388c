/* ask_example.c - the smallest program on bertqa's public interface (include/bertqa.h):
 *
 *   bertqa-ask-example MODEL QUESTION CONTEXT [NAME=VALUE ...]
 *
 * loads a Hugging Face checkpoint folder, answers one question and prints the best answer, its
 * character span and score. NAME=VALUE pairs are settings (device=cuda, precision=fp16, ...).
 * Build it outside this tree with: cc ask_example.c $(pkg-config --cflags --libs bertqa) */
#include <bertqa.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL QUESTION CONTEXT [NAME=VALUE ...]\n", argv[0]);
        return 2;
    }
    bq_err err = {BQ_OK, ""};
    bq_settings *settings = bq_settings_create();
    if (!settings) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (int i = 4; i < argc; i++) {
        char name[64];
        const char *eq = strchr(argv[i], '=');
        if (!eq || (size_t)(eq - argv[i]) >= sizeof name) {
            fprintf(stderr, "'%s': settings are NAME=VALUE\n", argv[i]);
            bq_settings_free(settings);
            return 2;
        }
        memcpy(name, argv[i], (size_t)(eq - argv[i]));
        name[eq - argv[i]] = '\0';
        if (bq_settings_set(settings, name, eq + 1, &err) != BQ_OK) {
            fprintf(stderr, "%s\n", err.message);
            bq_settings_free(settings);
            return 2;
        }
    }
    bq_reader *reader = NULL;
    bq_status st = bq_reader_create(argv[1], settings, &reader, &err);
    bq_settings_free(settings);
    if (st != BQ_OK) {
        fprintf(stderr, "%s: %s\n", bq_status_string(st), err.message);
        return 1;
    }
    fprintf(stderr, "bertqa %s on %s\n", bq_version_string(), bq_reader_describe(reader));

    bq_request request = {argv[2], strlen(argv[2]), argv[3], strlen(argv[3])};
    bq_result result;
    st = bq_reader_answer(reader, &request, 1, &result, &err);
    if (st == BQ_OK && result.status != BQ_OK) {
        st = result.status;
        fprintf(stderr, "%s: %s\n", bq_status_string(st), result.error);
    } else if (st != BQ_OK) {
        fprintf(stderr, "%s: %s\n", bq_status_string(st), err.message);
    } else {
        const bq_span *best = &result.answers[0];
        printf("%s\n", best->text);
        printf("characters %d-%d, score %.4f, probability %.4f\n", (int)best->char_start, (int)best->char_end,
               best->score, best->probability);
    }
    bq_results_clear(&result, 1);
    bq_reader_free(reader);
    return st == BQ_OK ? 0 : 1;
}
