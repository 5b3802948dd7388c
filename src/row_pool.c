/* row_pool.c - persistent workers for work split by rows or requests (row_pool.h). Workers sleep
 * on a condition variable between jobs, so they take no core from OpenBLAS while it multiplies. */
#include "row_pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

struct bq_row_pool {
    pid_t owner; /* the process whose threads the workers are: a forked child has none of them */
    int workers;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    unsigned long generation; /* a job's number: a worker runs each one once */
    int pending;              /* workers still on the current job */
    int stop;
    /* the current job */
    bq_row_fn fn;
    void *ctx;
    int n;
    int parts; /* min(threads, n): part i goes to the caller (0) or worker i */
};

/* Part `part` of `parts` contiguous parts of [0, n). */
static void part_bounds(int n, int parts, int part, int *begin, int *end) {
    *begin = (int)((long)n * part / parts);
    *end = (int)((long)n * (part + 1) / parts);
}

typedef struct {
    bq_row_pool *pool;
    int index; /* 1.. workers: the part it computes (the caller takes part 0) */
} worker_arg;

static void *worker_main(void *arg) {
    worker_arg *w = arg;
    bq_row_pool *p = w->pool;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->wake, &p->lock);
        if (p->stop) break;
        seen = p->generation;
        const bq_row_fn fn = p->fn;
        void *ctx = p->ctx;
        int begin = 0, end = 0;
        if (w->index < p->parts) part_bounds(p->n, p->parts, w->index, &begin, &end);
        pthread_mutex_unlock(&p->lock);
        if (begin < end) fn(ctx, begin, end);
        pthread_mutex_lock(&p->lock);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    free(w);
    return NULL;
}

bq_status bq_row_pool_create(int threads, bq_row_pool **out, bq_err *err) {
    *out = NULL;
    bq_row_pool *p = calloc(1, sizeof *p);
    if (!p) return bq_fail(err, BQ_ERR_NOMEM, "out of memory");
    p->owner = getpid();
    const int workers = threads > 1 ? threads - 1 : 0;
    p->threads = calloc(workers ? (size_t)workers : 1, sizeof *p->threads);
    if (!p->threads || pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p->threads);
        free(p);
        return bq_fail(err, BQ_ERR_NOMEM, "out of memory");
    }
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 0; i < workers; i++) {
        worker_arg *w = malloc(sizeof *w);
        if (w) *w = (worker_arg){p, i + 1};
        if (!w || pthread_create(&p->threads[i], NULL, worker_main, w) != 0) {
            free(w);
            bq_row_pool_free(p); /* stops the i workers started */
            return bq_fail(err, BQ_ERR_NOMEM, "cannot start host thread %d of %d", i + 2,
                           threads);
        }
        p->workers = i + 1;
    }
    *out = p;
    return BQ_OK;
}

void bq_row_pool_free(bq_row_pool *p) {
    if (!p) return;
    if (getpid() != p->owner) { /* a forked child: no workers to stop (their own state leaks) */
        free(p->threads);
        free(p);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->workers; i++) pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
}

void bq_row_pool_run(bq_row_pool *p, int n, bq_row_fn fn, void *ctx) {
    /* in a forked child the workers are gone (fork copies the calling thread only): waiting for
     * them would never end, so the caller computes every row */
    if (!p || p->workers == 0 || n < 2 || getpid() != p->owner) {
        if (n > 0) fn(ctx, 0, n);
        return;
    }
    const int parts = n < p->workers + 1 ? n : p->workers + 1;
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->parts = parts;
    p->pending = p->workers;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    int begin, end;
    part_bounds(n, parts, 0, &begin, &end);
    fn(ctx, begin, end);
    pthread_mutex_lock(&p->lock);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
}
