/* fuzz_common.c - the fuzz targets' shared helpers (fuzz_common.h). */
#include "fuzz_common.h"

#include <dirent.h>
#include <unistd.h>

const bq_vocab *fuzz_vocab(void) {
    static bq_vocab *vocab;
    if (!vocab) {
        bq_err err = {0};
        if (bq_vocab_load(BQ_SOURCE_DIR "/vocab/vocab.txt", &vocab, &err) != BQ_OK) {
            fprintf(stderr, "fuzz: %s\n", err.message);
            abort();
        }
    }
    return vocab;
}

char *fuzz_strndup(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    if (size) memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

static char temp_dir[64];

static void remove_temp_dir(void) {
    DIR *d = opendir(temp_dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) fuzz_remove_file(e->d_name);
        closedir(d);
    }
    rmdir(temp_dir);
}

const char *fuzz_temp_dir(void) {
    if (!temp_dir[0]) {
        /* in memory where the system has a tmpfs: a file written per input costs a disk's
         * metadata updates otherwise (ten times fewer inputs a second) */
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(temp_dir, sizeof temp_dir, "%s/bq-fuzz-XXXXXX", base);
        if (!mkdtemp(temp_dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(remove_temp_dir);
    }
    return temp_dir;
}

static void temp_path(char *path, size_t cap, const char *name) {
    snprintf(path, cap, "%s/%s", fuzz_temp_dir(), name);
}

void fuzz_write_file(const char *name, const uint8_t *data, size_t size) {
    char path[512];
    temp_path(path, sizeof path, name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

void fuzz_remove_file(const char *name) {
    char path[512];
    temp_path(path, sizeof path, name);
    unlink(path);
}

const char *fuzz_file(const uint8_t *data, size_t size) {
    static char path[512];
    fuzz_write_file("input", data, size);
    temp_path(path, sizeof path, "input");
    return path;
}
