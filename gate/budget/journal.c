/*
 * journal: the requests in flight, in a file mapped MAP_SHARED. See journal.h.
 */
#include "gate/budget/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gate/budget/ledger.h"

#define JOURNAL_MAGIC "TGJRNL01"
#define JOURNAL_HEADER 4096 /* one page: the slots start page-aligned */
#define SLOT_SIZE 1024
#define SLOT_LIVE 0x4556494cu /* "LIVE": a zeroed slot is free */
/* with ledger.sync: full, how often the syncer writes the slots put since its last pass */
#define JOURNAL_SYNC_MS 10

struct jslot {
    _Atomic uint32_t state; /* written last when filling, so a torn slot reads as free */
    int32_t stream;
    double ts;
    int64_t in_own, tokens, nusd;
    char id[80], key_id[24], agent[104], team[104], department[104], endpoint[64];
    char model[160], served_model[160], provider[128];
};
_Static_assert(sizeof(struct jslot) <= SLOT_SIZE, "a journal slot is at most SLOT_SIZE bytes");

struct jheader {
    char magic[8];
    uint32_t slot_size, nslots;
};

/* what one worker touches when it takes a slot, on a cache line of its own */
struct jworker {
    uint32_t cursor;      /* the worker's thread only: where the next search starts */
    _Atomic int64_t live; /* put by the worker, cleared by the ledger's writer */
    char pad[64 - sizeof(uint32_t) - sizeof(int64_t)];
};

struct journal {
    int fd;
    int sync_full;
    atomic_int dirty; /* a slot was put since the syncer's last pass */
    pthread_t syncer;
    int syncer_running;
    pthread_mutex_t mu; /* guards stop, with cv */
    pthread_cond_t cv;
    int stop;
    unsigned char *map;
    size_t size;
    uint32_t nslots, per_worker;
    int nworkers;
    struct jworker *w;
};

static struct jslot *slot_at(unsigned char *map, uint32_t i)
{
    return (struct jslot *)(map + JOURNAL_HEADER + (size_t)i * SLOT_SIZE);
}

/* Copies s into a field of cap bytes, cut to fit; NULL is kept as "" (read back as NULL). */
static void put_str(char *dst, size_t cap, const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s ? s : "", n);
    dst[n] = '\0';
}

static const char *get_str(char *field, size_t cap)
{
    field[cap - 1] = '\0'; /* the file may have been written by anything */
    return field[0] ? field : NULL;
}

#define GET(s, f) get_str((s)->f, sizeof((s)->f))

/*
 * Recovers the live slots of a mapping of size bytes (a journal of a previous run) into the
 * ledger. Returns the records inserted, or -1 with a reason in err (slots not yet recovered
 * stay live).
 */
static int recover(unsigned char *map, size_t size, struct ledger *l, char *err, size_t errlen)
{
    const struct jheader *h = (const struct jheader *)map;
    int n = 0;

    if (size < JOURNAL_HEADER)
        return 0;
    if (memcmp(h->magic, JOURNAL_MAGIC, 8) != 0 || h->slot_size != SLOT_SIZE ||
        JOURNAL_HEADER + (size_t)h->nslots * SLOT_SIZE > size) {
        snprintf(err, errlen, "is not a tokengate journal of this version");
        return -1;
    }
    for (uint32_t i = 0; i < h->nslots; i++) {
        struct jslot *s = slot_at(map, i);
        if (atomic_load_explicit(&s->state, memory_order_acquire) != SLOT_LIVE)
            continue;
        const char *id = GET(s, id);
        int has = ledger_has_request(l, id, s->ts);
        if (has < 0) {
            snprintf(err, errlen, "cannot read the ledger to recover it");
            return -1;
        }
        if (!has) {
            struct ledger_rec r = {
                .ts = s->ts,
                .id = id,
                .key_id = GET(s, key_id),
                .agent = GET(s, agent),
                .team = GET(s, team),
                .department = GET(s, department),
                .endpoint = GET(s, endpoint),
                .model = GET(s, model),
                .served_model = GET(s, served_model),
                .provider = GET(s, provider),
                .status = 0,
                .stream = s->stream,
                .in_own = s->in_own,
                .out_own = -1,
                .in_usage = -1,
                .out_usage = -1,
                .tokens_charged = s->tokens,
                .cost_nusd = s->nusd,
                .reserved_tokens = s->tokens,
                .decision = "unsettled",
                .error = "the gate stopped (a crash or kill) while this request was in flight: "
                         "charged at its reservation",
            };
            if (ledger_insert_now(l, &r) != 0) {
                snprintf(err, errlen, "cannot write the record of request %s to the ledger",
                         id ? id : "?");
                return -1;
            }
            n++;
        }
        atomic_store_explicit(&s->state, 0, memory_order_release);
    }
    return n;
}

/*
 * With ledger.sync: full: writes the file's dirty pages to the disk every JOURNAL_SYNC_MS while
 * slots are being put, off the requests' path (an msync per request took milliseconds, in the
 * worker's loop). A request in flight for longer than that survives a power loss too.
 */
static void *syncer(void *arg)
{
    struct journal *j = arg;

    pthread_mutex_lock(&j->mu);
    while (!j->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += JOURNAL_SYNC_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&j->cv, &j->mu, &until);
        if (atomic_exchange_explicit(&j->dirty, 0, memory_order_relaxed)) {
            pthread_mutex_unlock(&j->mu);
            fdatasync(j->fd);
            pthread_mutex_lock(&j->mu);
        }
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

struct journal *journal_open(const char *path, int nworkers, int sync_full, struct ledger *ledger,
                             int *recovered, char *err, size_t errlen)
{
    struct journal *j = calloc(1, sizeof(*j));
    char why[200];
    struct stat sb;
    int rc = 0;

    *recovered = 0;
    if (j == NULL) {
        snprintf(err, errlen, "journal: out of memory");
        return NULL;
    }
    j->map = NULL;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (j->fd < 0) {
        snprintf(err, errlen, "cannot open the journal %s: %s", path, strerror(errno));
        goto fail;
    }
    if (flock(j->fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "the journal %s is in use: another tokengate runs on this ledger",
                 path);
        goto fail;
    }
    if (fstat(j->fd, &sb) != 0) {
        snprintf(err, errlen, "cannot read the journal %s: %s", path, strerror(errno));
        goto fail;
    }
    if (sb.st_size > 0) {
        unsigned char *old =
            mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, j->fd, 0);
        if (old == MAP_FAILED) {
            snprintf(err, errlen, "cannot map the journal %s: %s", path, strerror(errno));
            goto fail;
        }
        rc = recover(old, (size_t)sb.st_size, ledger, why, sizeof(why));
        munmap(old, (size_t)sb.st_size);
        if (rc < 0) {
            snprintf(err, errlen, "journal %s: %s", path, why);
            goto fail;
        }
        *recovered = rc;
    }
    /* every slot is free now: the file takes this run's shape, its blocks allocated up front
     * so that a write into the mapping can never meet a full disk */
    j->nworkers = nworkers;
    j->per_worker = JOURNAL_SLOTS_PER_WORKER;
    j->nslots = (uint32_t)nworkers * j->per_worker;
    j->size = JOURNAL_HEADER + (size_t)j->nslots * SLOT_SIZE;
    j->sync_full = sync_full;
    errno = 0;
    if (ftruncate(j->fd, 0) != 0 || ftruncate(j->fd, (off_t)j->size) != 0 ||
        (rc = posix_fallocate(j->fd, 0, (off_t)j->size)) != 0) {
        snprintf(err, errlen, "cannot make the journal %s (%zu bytes): %s", path, j->size,
                 strerror(rc ? rc : errno));
        goto fail;
    }
    j->map = mmap(NULL, j->size, PROT_READ | PROT_WRITE, MAP_SHARED, j->fd, 0);
    if (j->map == MAP_FAILED) {
        j->map = NULL;
        snprintf(err, errlen, "cannot map the journal %s: %s", path, strerror(errno));
        goto fail;
    }
    struct jheader h = {.slot_size = SLOT_SIZE, .nslots = j->nslots};
    memcpy(h.magic, JOURNAL_MAGIC, 8);
    memcpy(j->map, &h, sizeof(h));
    if (msync(j->map, JOURNAL_HEADER, MS_SYNC) != 0) {
        snprintf(err, errlen, "cannot write the journal %s: %s", path, strerror(errno));
        goto fail;
    }
    j->w = calloc((size_t)nworkers, sizeof(*j->w));
    if (j->w == NULL) {
        snprintf(err, errlen, "journal: out of memory");
        goto fail;
    }
    if (sync_full) {
        if (pthread_create(&j->syncer, NULL, syncer, j) != 0) {
            snprintf(err, errlen, "journal: cannot start its thread");
            goto fail;
        }
        j->syncer_running = 1;
    }
    return j;
fail:
    journal_close(j);
    return NULL;
}

uint32_t journal_put(struct journal *j, int worker, const struct journal_entry *e)
{
    struct jworker *w = &j->w[worker];
    uint32_t base = (uint32_t)worker * j->per_worker;

    for (uint32_t n = 0; n < j->per_worker; n++) {
        uint32_t i = base + (w->cursor + n) % j->per_worker;
        struct jslot *s = slot_at(j->map, i);
        if (atomic_load_explicit(&s->state, memory_order_acquire) != 0)
            continue;
        s->stream = e->stream;
        s->ts = e->ts;
        s->in_own = e->in_own;
        s->tokens = e->tokens;
        s->nusd = e->nusd;
        put_str(s->id, sizeof(s->id), e->id);
        put_str(s->key_id, sizeof(s->key_id), e->key_id);
        put_str(s->agent, sizeof(s->agent), e->agent);
        put_str(s->team, sizeof(s->team), e->team);
        put_str(s->department, sizeof(s->department), e->department);
        put_str(s->endpoint, sizeof(s->endpoint), e->endpoint);
        put_str(s->model, sizeof(s->model), e->model);
        put_str(s->served_model, sizeof(s->served_model), e->served_model);
        put_str(s->provider, sizeof(s->provider), e->provider);
        atomic_store_explicit(&s->state, SLOT_LIVE, memory_order_release);
        if (j->sync_full && !atomic_load_explicit(&j->dirty, memory_order_relaxed))
            atomic_store_explicit(&j->dirty, 1, memory_order_relaxed);
        w->cursor = (w->cursor + n + 1) % j->per_worker;
        atomic_fetch_add_explicit(&w->live, 1, memory_order_relaxed);
        return i + 1;
    }
    return 0;
}

void journal_clear(struct journal *j, uint32_t slot)
{
    if (j == NULL || slot == 0 || slot > j->nslots)
        return;
    atomic_store_explicit(&slot_at(j->map, slot - 1)->state, 0, memory_order_release);
    atomic_fetch_sub_explicit(&j->w[(slot - 1) / j->per_worker].live, 1, memory_order_relaxed);
}

uint64_t journal_live(struct journal *j)
{
    int64_t n = 0;

    for (int i = 0; j != NULL && i < j->nworkers; i++)
        n += atomic_load_explicit(&j->w[i].live, memory_order_relaxed);
    return n > 0 ? (uint64_t)n : 0;
}

void journal_close(struct journal *j)
{
    if (j == NULL)
        return;
    if (j->syncer_running) {
        pthread_mutex_lock(&j->mu);
        j->stop = 1;
        pthread_cond_signal(&j->cv);
        pthread_mutex_unlock(&j->mu);
        pthread_join(j->syncer, NULL);
    }
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    if (j->map != NULL)
        munmap(j->map, j->size);
    if (j->fd >= 0)
        close(j->fd); /* releases the lock */
    free(j->w);
    free(j);
}
