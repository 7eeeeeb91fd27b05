/*
 * processes.h - what the processes executor's files share: lanes (one worker
 * thread of a worker process, driven by one crew member), processes, the
 * shared scratch layout and the messages. The design is described atop
 * processes.c.
 */
#ifndef PM_PROCESSES_H
#define PM_PROCESSES_H

#include "crew.h"

#if PM_HAVE_FORK
#include <stdint.h>
#include <sys/types.h>

/* Shared scratch per lane: enough for ~4 MB of records per piece. */
#define SCRATCH_BYTES ((size_t)4 << 20)
/* How often a waiting member checks cancellation, timeouts, liveness. */
#define CHECK_S 0.05

/* Two scratch slots per lane, so that the next piece is already queued when
 * the worker finishes one (the worker never waits for the parent between
 * small chunks). */
#define SLOTS 2
/* Encoded outputs (jobs with a codec) per slot; one bigger output fails its item. */
#define ARENA_BYTES ((size_t)2 << 20)
/* An input span that carries an item's failure (its code) instead of bytes. */
#define SPAN_FAILED ((uint64_t)1 << 63)

typedef struct lane_shm {
    atomic_size_t pos[SLOTS]; /* items of the slot's piece finished (child writes) */
    atomic_size_t beat;       /* bumped by the child when worker_init returned: the
                                 item timeout then starts again (init is not an item) */
} lane_shm;

typedef struct msg_run {   /* parent -> worker thread */
    const void *in;        /* inherited input, or NULL: read the scratch */
    size_t first;          /* index of the piece's first item (batch functions) */
    size_t count;
    int slot;              /* MSG_QUIT: the job is over, exit */
} msg_run;

/* The end of a job is said, never inferred from EOF: other processes (a
 * helper another thread forked, another call's workers) may hold copies of
 * a lane's socket, and then no EOF comes. */
#define MSG_QUIT (-1)
/* The exit status of a worker whose lane socket was closed or replaced by
 * an item: it cannot answer any more, so it ends and the parent sees a death. */
#define LANE_LOST_EXIT 71

typedef struct msg_done {  /* worker thread -> parent */
    size_t ran;
    unsigned flags;        /* DONE_* */
} msg_done;

/* The lane's worker_init failed: the piece's items got PM_EWORKERINIT. */
#define DONE_INIT_FAILED 1u
/* The answer to MSG_QUIT of a job with worker_exit: the exit ran (or the
 * worker never started), the process is about to end. */
#define DONE_EXIT 2u
/* ... and the worker's exit record is in the lane's exit_rec. */
#define DONE_RECORD 4u

typedef struct proc proc;
typedef struct procs_state procs_state;

typedef struct lane {
    procs_state *st;
    proc *proc;
    int fd, next_fd, child_fd;  /* ours, a respawn's not yet adopted, the child's */
    unsigned long long child_id;  /* in the child: what child_fd refers to (pm__fd_id) */
    unsigned gen;               /* generation of the process `fd` talks to */
    void *map;
    size_t map_size, cap;
    lane_shm *shm;
    int *codes[SLOTS];
    unsigned char *in[SLOTS], *out[SLOTS];
    /* jobs with an output codec: each item's encoded output is spans[k]
     * = (offset << 32 | length) into the slot's arena */
    uint64_t *spans[SLOTS];
    unsigned char *arena[SLOTS];
    size_t arena_size;
    /* jobs whose codec ships inputs too (encode_in), for inputs the worker
     * does not already have (streams): in_spans[k] into the slot's in_arena */
    uint64_t *in_spans[SLOTS];  /* or SPAN_FAILED | the item's code */
    unsigned char *in_arena[SLOTS];
    size_t in_arena_size;
    /* jobs with opts.exit_results: where the child's worker_exit writes its
     * record (exit_size bytes of the shared scratch, after the slots) */
    unsigned char *exit_rec;
} lane;

struct proc {
    pid_t pid;                 /* 0: not running */
    unsigned gen;              /* bumped at every (re)spawn */
    int dead;                  /* killed for cancellation: do not respawn */
    int spawn_wanted;          /* a lane waits for the calling thread to fork it */
    size_t items_run;          /* by this process (recycling) */
    int retiring;              /* recycled: no new piece; the last lane out replaces it */
    int active, exclusive, want_exclusive;
    lane *lanes;               /* `threads` of them */
};

struct procs_state {
    pm__crew crew;             /* first: member w drives lanes[w] */
    int nprocs, nthreads, ready;
    pid_t parent;
    pm__mutex lock;
    pm__cond cv;               /* exclusivity changes, the job slot frees */
    pm__job *job;              /* the job the processes belong to */
    int caller_forks;          /* replacements are forked by the calling thread */
    proc *procs;
    lane *lanes;
};

/* proc_worker.c: the worker processes. */
/* Make sure p has a process, unless it is dead (canceled) or a fork fails
 * (then p->pid stays 0). With st->lock held; may wait for the caller's
 * thread to fork it (caller_forks), never for anything else. */
void pm__proc_ensure(procs_state *st, proc *p);
/* Fork a (new) process for p; its lanes adopt the sockets at their next
 * piece. With st->lock held (a fork does not block). */
int  pm__proc_spawn(procs_state *st, proc *p);
/* The process behind generation `gen` died or must go: kill it and reap it
 * (unless someone already did: returns -1); the next piece starts another
 * (pm__proc_ensure). Returns the signal it died of (0: it exited). Takes
 * st->lock, and never waits while holding it. */
int  pm__proc_replace(procs_state *st, proc *p, unsigned gen);

/* proc_admit.c: entering a lane's process for a piece, and recycling. */
/* Wait for the exclusivity and recycling rules, start or adopt the process.
 * Returns the generation talked to (*pid its pid), or 0 when there is no
 * process (*dead: canceled; else a fork failed). */
unsigned pm__lane_enter(procs_state *st, lane *l, int exclusive, pid_t *pid, int *dead);
/* After the piece; the last lane out of a retiring process replaces it. */
void     pm__lane_leave(procs_state *st, lane *l, int exclusive);
/* A piece of `done` items ran in process `pid`: count them, and mark the
 * process retiring when it reached a recycling limit. */
void     pm__proc_ran(procs_state *st, lane *l, const pm__job *job, pid_t pid, size_t done);
/* 1 when the lane's process is being recycled: send it no new piece. */
int      pm__proc_retiring(procs_state *st, const lane *l);
/* The items a piece of `count` may take without passing the process's
 * recycle_items budget (pieces in flight aside). */
size_t   pm__proc_budget(lane *l, const pm__job *job, size_t count);

/* proc_state.c: per-worker state (opts.worker_init / worker_exit). */
/* What a lane thread of a worker process keeps of its worker's state. */
typedef struct lane_ws {
    int phase;      /* 0: not started, 1: live (init ran), 2: init failed or exit ran */
    void *state;
} lane_ws;
/* Child side, before a piece: start the worker on its first piece. 1 when
 * the piece may run, 0 when this worker has no state (its init failed). */
int    pm__lane_ws_ready(lane *l, lane_ws *w);
/* Child side: a piece that cannot run (init failed) fails every item with
 * PM_EWORKERINIT. Returns the items answered (all). */
size_t pm__lane_ws_refuse(lane *l, int slot, size_t count);
/* Child side, on MSG_QUIT: run the worker's exit, answer DONE_EXIT. */
void   pm__lane_ws_quit(lane *l, lane_ws *w);
/* 1 when lanes of the job answer MSG_QUIT (the job has a worker_exit). */
int    pm__procs_exits_owed(const pm__job *job);
/* Parent side, after MSG_QUIT went to every lane of process `pid` (p's):
 * take each lane's answer and deliver its exit record, killing the process
 * when its exits run past timeout_s or it stops. No lock held. */
void   pm__proc_exits(procs_state *st, proc *p, pid_t pid);

/* proc_lane.c: a crew member's step: take a task, run it in the lane's worker. */
int  pm__lane_step(void *owner, pm__job *job, int worker);

#endif
#endif
