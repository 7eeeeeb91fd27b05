/*
 * mpi.h - what the MPI executor's files share: the messages, rank 0's and the
 * followers' bookkeeping, the executor's state, and the wire helpers. The
 * design is described atop mpi.c; rank 0's side is mpi_owner.c, the
 * followers' side mpi_follower.c, the wire helpers mpi_wire.c.
 */
#ifndef PM_MPI_H
#define PM_MPI_H

/* clock_gettime, pthread_condattr_setclock under -std=c11 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

/* Public headers only: libparmap_mpi is built on the executor interface. */
#include "parmap.h"
#include "parmap_exec.h"

#include <mpi.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The communication thread's naps: from IDLE_MIN_S, doubling up to
 * IDLE_MAX_S while it waits for something (a follower with no chunk queued,
 * rank 0 with a follower to feed or to end); a flat IDLE_CALM_S when every
 * queue is full, since then nothing is urgent and a compute thread kicks it
 * when a chunk is done. */
#define IDLE_MIN_S 0.00002
#define IDLE_MAX_S 0.0001
#define IDLE_CALM_S 0.001
/* A chunk sent to another rank costs a message each way and a few wake-ups:
 * its chunker is shown 1/REMOTE_SCALE of the time it ran, so remote chunks
 * hold REMOTE_SCALE times more work than local ones (~2 ms instead of
 * ~0.5 ms); the guided tail still bounds them near the end. */
#define REMOTE_SCALE 4
/* Tags: 2 per job number, modulo a range every MPI allows (MPI_TAG_UB >= 32767). */
#define TAG_JOBS 8192

enum { MSG_HELLO = 1, MSG_TASK, MSG_END, MSG_RESULT, MSG_EXITS };
/* msg_head.flags */
enum {
    FLAG_CANCELED = 1,    /* END: rank 0 was canceled, drop the chunks not started */
    FLAG_EXITS = 2,       /* END: the call has per-worker state; answer with EXITS
                             once every thread here ran its exit */
    FLAG_INIT_FAILED = 4  /* RESULT: the thread's worker_init failed (items: PM_EWORKERINIT) */
};

/* Flow control: rank 0 keeps enough chunks queued at each follower to cover
 * the round trip's latency (measured) several times over, at least
 * QUEUE_MIN_S of work per thread, and at most QUEUE_MAX_CHUNKS chunks. */
#define QUEUE_MIN_S 0.002
#define QUEUE_LATENCIES 4
#define QUEUE_MAX_CHUNKS 64

typedef struct msg_head {   /* every message starts with this */
    uint64_t kind, seq, flags;
    uint64_t id, base, count;  /* TASK, RESULT: the chunk; HELLO: count = threads;
                                  EXITS: count = records */
    uint64_t exit_size;        /* END, EXITS: bytes per exit record (0: rank 0 keeps none) */
    uint64_t ran, failed, first_failed;
    int64_t first_code;
    uint64_t in_stride, out_stride; /* TASK: rank 0's record sizes (a follower's
                                       call may pass 0 for outputs it never sees) */
    double wait_s, run_s;      /* RESULT: the chunk queued, then ran, this long */
} msg_head;
/* An item whose record could not be encoded: its length word, then its code. */
#define BAD_RECORD UINT64_MAX

/* A send in flight: its buffer lives until MPI is done with it. */
typedef struct sending {
    struct sending *next;
    MPI_Request req;
    unsigned char *buf;
} sending;

/* Rank 0: a chunk out at a follower. */
typedef struct remote {
    pm_task t;
    double sent;               /* when it left */
    int worker, used;
} remote;

typedef struct peer {
    int ready, threads, ended;    /* said hello (with its threads), got END */
    int exited;                   /* sent EXITS (calls with per-worker state) */
    size_t outstanding, out_items;
    double sec_per_item;          /* measured there (0: not yet) */
    double latency;               /* round trip minus queueing and work */
} peer;

/* A follower's chunk: received, run here, sent back. */
typedef struct ftask {
    struct ftask *next;
    uint64_t id;
    pm_task t;
    uint64_t seq;
    unsigned char *msg;        /* the received message (plain inputs point into it) */
    size_t msg_len;
    unsigned char *reply;      /* the RESULT message, packed by the compute thread */
    size_t reply_len;
    unsigned char *in, *out;   /* decoded inputs (codec jobs), outputs */
    int *codes;
    int bad;                   /* an input would not decode (or the thread's worker_init
                                  failed): every item fails with it */
    size_t in_stride, out_stride;  /* rank 0's record sizes (its TASK says: this
                                      rank's call may pass 0 for outputs) */
    const pm_codec *codec;     /* this rank's job's (pm_vmap), NULL: plain records */
    double queued, started, ended;
} ftask;

/* What a compute thread does with the job: one chunk per call, PM_STEP_*. */
typedef int (*pm__mpi_step_fn)(void *owner, pm_job *job, int worker);

/* The compute threads (mpi_team.c): `size` pthreads that step the one job
 * in progress, and the helper, the thread in pm__mpi_team_wait. */
typedef struct mpi_team {
    pthread_mutex_t lock;
    pthread_cond_t work_cv;    /* members: a job, a notify, quit */
    pthread_cond_t done_cv;    /* wait(): the job may be over */
    int lock_ready, work_ready, done_ready;
    int size, started;         /* members requested, threads running (join these) */
    int helper;                /* the helper's worker number (-1: none) */
    pthread_t *threads;
    struct mpi_member *members;
    pm__mpi_step_fn step;
    void *owner;
    /* guarded by lock */
    pm_job *job;               /* the job in progress, NULL: none */
    unsigned long epoch;       /* bumped whenever there may be new work */
    int quit;
    int ended;                 /* a worker saw PM_STEP_END */
    int inside;                /* workers inside step() */
    int track;                 /* the job has per-worker state: count who owes an exit */
    unsigned char *owes;       /* per slot (members, then the helper): ran a chunk
                                  of the job, so it may owe its exit */
    int nowing;
} mpi_team;

typedef struct mpi_state {
    mpi_team team;
    MPI_Comm comm;
    int rank, size, threads;
    int comm_ready, lock_ready, cv_ready, comm_started;
    pthread_mutex_t lock;
    pthread_cond_t cv;         /* the communication thread: a job, a kick, quit */
    pthread_cond_t done_cv;    /* wait(): the communication thread finished the job */
    pthread_t comm_thread;
    /* guarded by lock */
    pm_job *job;               /* the job in progress: one at a time */
    uint64_t seq;              /* its number: every rank counts jobs alike */
    int quit, kick, remote_done, team_done;
    ftask *ready, *ready_tail, *done;   /* followers: chunks to run, chunks ran */
    size_t nready;
    int got_end;
    /* followers' per-worker state: which compute threads started (and owe
     * their exit), the records their exits wrote, for the EXITS message */
    struct fworker { int live, has_rec; } *fw;   /* one per compute thread */
    int nlive;
    int has_state;             /* this rank's call has worker_init / worker_exit */
    unsigned char *exit_buf;   /* threads x exit_size, set with got_end */
    size_t exit_size;
    /* the communication thread's own */
    sending *sends;
    remote *remotes;
    size_t nremotes;
    peer *peers;
} mpi_state;

static inline int tag_down(uint64_t seq) { return (int)(seq % TAG_JOBS) * 2; }
static inline int tag_up(uint64_t seq) { return (int)(seq % TAG_JOBS) * 2 + 1; }

/* Rank 0's worker number for follower `r`: after the local members
 * (0 .. threads - 2) and before the calling thread, which is number
 * workers() (threads + size - 2) as the executor protocol says: pm_imap's
 * consumer runs chunks as that number, and so does wait() (team.helper). */
static inline int worker_of(const mpi_state *st, int r) { return st->threads + r - 2; }


/* mpi_wire.c */
/* Send `buf` (malloc'd; freed once sent, or at once on failure). PM_OK or error. */
int  pm__mpi_post(mpi_state *st, unsigned char *buf, size_t len, int dest, int tag);
/* Free the buffers of completed sends; with `all`, wait for every send. */
void pm__mpi_reap_sends(mpi_state *st, int all);
/* Receive the next message on `tag` if one is there: a malloc'd buffer. */
unsigned char *pm__mpi_try_recv(mpi_state *st, int source, int tag, int *from, size_t *len);
/* Nothing happened: sleep a little longer each time (`calm`: IDLE_CALM_S),
 * unless kicked. */
void pm__mpi_idle(mpi_state *st, double *backoff, int calm);
/* A message: header, `extra` bytes, then `count` records of `stride` bytes
 * at `rec`, raw or (with `encode`) each as a length word and its bytes. */
typedef int (*pm__mpi_encode_fn)(void *ctx, void *rec, unsigned char **buf, size_t *len);
unsigned char *pm__mpi_pack(const msg_head *h, const void *extra, size_t extra_len,
                            unsigned char *rec, size_t stride, size_t count,
                            pm__mpi_encode_fn encode, void *ctx, size_t *len);
/* The next encoded record of a message: 0 with its bytes, or its code. */
int  pm__mpi_unpack_next(const unsigned char **p, const unsigned char *end,
                         const unsigned char **bytes, size_t *len);

/* mpi_team.c */
/* Start `size` compute threads; the thread in pm__mpi_team_wait steps as
 * worker number `helper` (-1: it never helps). On error the team is half-built and
 * pm__mpi_team_close cleans it up. */
int  pm__mpi_team_open(mpi_team *t, int size, int helper, pm__mpi_step_fn step, void *owner);
void pm__mpi_team_close(mpi_team *t);
/* The members start stepping `job` (one job at a time). */
void pm__mpi_team_submit(mpi_team *t, pm_job *job);
/* The job may have new work: wake the members that ran out. */
void pm__mpi_team_notify(mpi_team *t);
/* Wait up to `seconds` (< 0: forever) until the job ended and no member is
 * inside it (and none owes its exit); with `help`, first run its chunks on
 * this thread as worker number `helper`. 1: ended (and forgotten), 0: timeout. */
int  pm__mpi_team_wait(mpi_team *t, pm_job *job, double seconds, int help);
/* The monotonic clock, in seconds. */
double pm__mpi_now(void);
/* A condition variable whose timed waits use the monotonic clock. PM_OK or PM_ESYS. */
int  pm__mpi_cond_init(pthread_cond_t *cv);
/* Wait on `cv` at most `seconds` (lock held, as pthread_cond_timedwait). */
void pm__mpi_timedwait(pthread_cond_t *cv, pthread_mutex_t *lock, double seconds);

/* mpi_owner.c: rank 0 */
void pm__mpi_serve(mpi_state *st, pm_job *job, uint64_t seq);
int  pm__mpi_owner_step(void *owner, pm_job *job, int worker);
/* mpi_follower.c: the other ranks */
void pm__mpi_follow(mpi_state *st, pm_job *job, uint64_t seq);
int  pm__mpi_follower_step(void *owner, pm_job *job, int worker);

#endif
