/*
 * mpi.c - the MPI executor (PM_MPI): ranks x threads, on the MPI engine the
 * cluster already runs. It is its own library, libparmap_mpi (built when
 * CMake finds MPI: PM_WITH_MPI), so that libparmap never links MPI: the core
 * knows this executor only through the table it registers
 * (pm_exec_register, see "Registration" below).
 *
 * SPMD: every rank makes the same calls in the same order, so every rank
 * opens this executor and submits one job per call. Rank 0 *owns* the job
 * (its core reads the input and collects results); the other ranks are
 * *followers* (the core reads nothing there: the `follower` method of
 * parmap_exec.h). libparmap_mpi is built on the public headers only
 * (parmap.h, parmap_exec.h): what it needs to know of a job is what
 * pm_job_info_get, pm_job_refused and the pm_job_* / pm_task_* functions
 * say, and its threads are its own (mpi_team.c).
 *
 * Each rank runs `threads` compute threads (on rank 0 the calling thread is
 * one of them, as with the threads executor) and one communication thread,
 * which alone talks MPI during a job:
 *  - a follower's thread grants rank 0 some *credits* (how many chunks it
 *    wants queued: 2 per compute thread, so the next chunk is already there
 *    when one finishes: network latency hides behind work), receives chunks
 *    into a local ready list that its compute threads run, and sends each
 *    chunk's codes and outputs back, which grants one credit more;
 *  - rank 0's thread turns credits into chunks with the job's own take()
 *    (each follower is one more worker, with its own chunker: the chunk time
 *    it measures is the round trip, so auto chunks grow until the latency is
 *    small beside the work), and hands results to the job's finish(). When
 *    take() says END it tells the follower so; the job is over for a
 *    follower once it got END and every chunk it had came back.
 * Workers pull, so load balances itself.
 *
 * Arguments: each rank checks what it reads itself (the core), and submit()
 * starts with an MPI_Allreduce of every rank's verdict (agree()): one rank's
 * bad arguments fail the call on all ranks before anything runs. Finding out
 * later, from a follower's first message, would leave rank 0's outcome to
 * timing (its own threads may have run every item by then).
 *
 * Messages: rank 0 -> follower (TASK, END) on one tag and follower -> rank 0
 * (CREDIT, RESULT) on another, both derived from the job's number, so that a
 * fast follower's messages for the next job wait in MPI until rank 0 gets
 * there, and messages of one direction arrive in the order sent. Records
 * travel as bytes; a job with a codec (pm_vmap) ships encoded inputs and
 * outputs instead. Sends are non-blocking (both sides only ever wait in
 * their polling loop), so two big messages crossing cannot deadlock.
 *
 * Per-worker state (opts.worker_init / worker_exit): a worker is a compute
 * thread of a rank. Rank 0's step jobs with pm_job_step (the core runs init
 * and exit); a follower's run received chunks as workers of their rank's own
 * job (pm_job_worker_enter / pm_job_worker_exit), since the states live
 * there. A thread whose init failed answers its chunks with PM_EWORKERINIT
 * and FLAG_INIT_FAILED, which stops the call on rank 0
 * (pm_job_worker_failed). END tells a follower that the call has state
 * (FLAG_EXITS) and how big rank 0's records are; once its last chunk went
 * back and every thread that started ran its exit, the follower sends the
 * records in one EXITS message, and rank 0 ends the job only when every
 * follower's came (pm_job_exit_deliver files them): the call never returns
 * before every exit in the job ran. Worker numbers on rank 0: the compute
 * threads 0 .. threads - 2, follower r as threads + r - 2, the calling
 * thread last (workers(), as the executor protocol says).
 *
 * Waiting: the communication thread polls MPI_Iprobe while messages flow and
 * otherwise sleeps with a growing back-off (at most IDLE_MAX_S), or longer
 * (IDLE_CALM_S) while every queue is full, so a rank waiting on others does
 * not burn a core: on rank 0 that core computes.
 *
 * Files: mpi.c (this: the communication thread, the executor's methods, the
 * public pm_mpi_* functions, registration), mpi_owner.c (rank 0's side),
 * mpi_follower.c (the other ranks'), mpi_wire.c (messages), mpi_team.c (the
 * compute threads, clock and condition variables), mpi.h (what they share).
 */
#include "mpi.h"

/* ------------------------------------------------- communication thread */

static void *comm_main(void *arg)
{
    mpi_state *st = arg;
    pthread_mutex_lock(&st->lock);
    while (!st->quit) {
        if (!st->job || st->remote_done) {
            pthread_cond_wait(&st->cv, &st->lock);
            continue;
        }
        pm_job *job = st->job;
        uint64_t seq = st->seq;
        pthread_mutex_unlock(&st->lock);
        if (st->rank == 0)
            pm__mpi_serve(st, job, seq);
        else
            pm__mpi_follow(st, job, seq);
        pthread_mutex_lock(&st->lock);
        st->remote_done = 1;
        pthread_cond_broadcast(&st->done_cv);
    }
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

/* ------------------------------------------------------------- executor */

static int mpi_ready(void)
{
    int inited = 0, finalized = 0, level = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (!inited || finalized)
        return PM_ENOMPI;
    MPI_Query_thread(&level);
    return level >= MPI_THREAD_MULTIPLE ? PM_OK : PM_ENOTSUP;
}

static void mpi_close(void *state)
{
    mpi_state *st = state;
    if (st->comm_started) {
        pthread_mutex_lock(&st->lock);
        st->quit = 1;
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->lock);
        pthread_join(st->comm_thread, NULL);
        st->comm_started = 0;
    }
    pm__mpi_team_close(&st->team);
    if (st->cv_ready) {
        pthread_cond_destroy(&st->cv);
        pthread_cond_destroy(&st->done_cv);
    }
    if (st->lock_ready)
        pthread_mutex_destroy(&st->lock);
    st->cv_ready = st->lock_ready = 0;
    if (st->comm_ready && mpi_ready() == PM_OK)
        MPI_Comm_free(&st->comm);
    st->comm_ready = 0;
    free(st->remotes);
    free(st->peers);
    free(st->fw);
    free(st->exit_buf);
    st->remotes = NULL;
    st->peers = NULL;
    st->fw = NULL;
    st->exit_buf = NULL;
}

static int mpi_open(void *state, const pm_exec_config *cfg)
{
    mpi_state *st = state;
    int rc = mpi_ready();
    if (rc != PM_OK)
        return rc;
    /* A communicator of our own: our tags never meet the program's messages. */
    if (MPI_Comm_dup(MPI_COMM_WORLD, &st->comm) != MPI_SUCCESS)
        return PM_ESYS;
    st->comm_ready = 1;
    MPI_Comm_rank(st->comm, &st->rank);
    MPI_Comm_size(st->comm, &st->size);
    st->threads = cfg->threads;
    if (!(st->peers = calloc((size_t)st->size, sizeof *st->peers)) ||
        !(st->fw = calloc((size_t)st->threads, sizeof *st->fw)))
        return PM_ENOMEM;
    if (pthread_mutex_init(&st->lock, NULL) != 0)
        return PM_ESYS;
    st->lock_ready = 1;
    if ((rc = pm__mpi_cond_init(&st->cv)) != PM_OK)
        return rc;
    if ((rc = pm__mpi_cond_init(&st->done_cv)) != PM_OK) {
        pthread_cond_destroy(&st->cv);
        return rc;
    }
    st->cv_ready = 1;
    /* Rank 0's calling thread computes too, as worker workers(), after the
     * followers; a follower's only waits. */
    rc = st->rank == 0 ? pm__mpi_team_open(&st->team, st->threads - 1,
                                           st->threads - 1 + st->size - 1,
                                           pm__mpi_owner_step, st)
                       : pm__mpi_team_open(&st->team, st->threads, -1,
                                           pm__mpi_follower_step, st);
    if (rc != PM_OK)
        return rc;
    if (pthread_create(&st->comm_thread, NULL, comm_main, st) != 0)
        return PM_ESYS;
    st->comm_started = 1;
    return PM_OK;
}

static int mpi_workers(const void *state)
{
    const mpi_state *st = state;
    return st->rank == 0 ? st->threads - 1 + st->size - 1 : st->threads;
}

/* Every rank's verdict on its own call, before anything runs: the lowest
 * status of all (PM_OK only when all are). A rank whose arguments were bad
 * takes part with a refusing job (pm_job_refused) and says PM_EINVAL, so the call
 * fails on every rank with no item run anywhere, whatever the timing; were it
 * found out later (rank 0 runs items before a follower even arrives), the
 * outcome would depend on who came first. A collective on our communicator:
 * every rank submits once per call, in the same order (SPMD), from the
 * calling thread, while the communication thread is idle. */
static int agree(mpi_state *st, int mine)
{
    int all = mine;
    if (st->size > 1 && MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, st->comm) != MPI_SUCCESS)
        return PM_ESYS;
    return all;
}

static int mpi_submit(void *state, pm_job *job)
{
    mpi_state *st = state;
    pthread_mutex_lock(&st->lock);
    if (st->job) {
        pthread_mutex_unlock(&st->lock);
        return PM_EINVAL; /* one call at a time: ranks must agree on the order */
    }
    /* Taken, so no other call slips in while the ranks agree; remote_done
     * keeps the communication thread away from it meanwhile. No lock is held
     * across the collective. */
    st->job = job;
    st->remote_done = 1;
    pthread_mutex_unlock(&st->lock);
    pm_job_info info;
    pm_job_info_get(job, &info);
    int mine = pm_job_refused(job) ? PM_EINVAL : PM_OK;
    if (mine == PM_OK && info.timeout_s > 0)
        mine = PM_ENOTSUP;
    if (mine == PM_OK && info.codec && st->size > 1 &&
        (!info.codec->encode_in || !info.codec->decode_in))
        mine = PM_ENOTSUP;
    int rc = agree(st, mine);
    pthread_mutex_lock(&st->lock);
    if (rc != PM_OK) {
        st->job = NULL;
        pthread_mutex_unlock(&st->lock);
        return rc;
    }
    st->seq++;
    st->got_end = 0;
    /* (every thread's exit of the last job ran before its wait() ended) */
    memset(st->fw, 0, (size_t)st->threads * sizeof *st->fw);
    st->nlive = 0;
    st->has_state = info.worker_state;
    free(st->exit_buf);
    st->exit_buf = NULL;
    st->exit_size = 0;
    st->team_done = 0;
    st->remote_done = st->size == 1;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->lock);
    pm__mpi_team_submit(&st->team, job);
    return PM_OK;
}

static void mpi_notify(void *state)
{
    mpi_state *st = state;
    pm__mpi_team_notify(&st->team);
    pthread_mutex_lock(&st->lock);
    st->kick = 1;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->lock);
}

static int mpi_wait(void *state, pm_job *job, double seconds)
{
    mpi_state *st = state;
    double deadline = seconds >= 0 ? pm__mpi_now() + seconds : 0;
    if (!st->team_done) {
        if (!pm__mpi_team_wait(&st->team, job, seconds, st->rank == 0))
            return 0;
        st->team_done = 1;
    }
    pthread_mutex_lock(&st->lock);
    while (!st->remote_done) {
        double left = deadline - pm__mpi_now();
        if (seconds >= 0 && left <= 0) {
            pthread_mutex_unlock(&st->lock);
            return 0;
        }
        if (seconds < 0)
            pthread_cond_wait(&st->done_cv, &st->lock);
        else
            pm__mpi_timedwait(&st->done_cv, &st->lock, left);
    }
    st->job = NULL;
    pthread_mutex_unlock(&st->lock);
    return 1;
}

static int mpi_follower(const void *state)
{
    return ((const mpi_state *)state)->rank != 0;
}

static int mpi_share(void *state, void *buf, size_t len)
{
    mpi_state *st = state;
    unsigned char *p = buf;
    while (len > 0) {
        int part = len > (size_t)1 << 30 ? 1 << 30 : (int)len;
        if (MPI_Bcast(p, part, MPI_BYTE, 0, st->comm) != MPI_SUCCESS)
            return PM_ESYS;
        p += part;
        len -= (size_t)part;
    }
    return PM_OK;
}

static int mpi_follows(void)
{
    return pm_mpi_rank() > 0;
}

/* Every rank's threads are workers with a state of their own. Rank 0
 * counts with its own `threads` (a follower with more than rank 0 sends
 * more records: past exit_capacity they are counted as dropped). */
static int mpi_state_workers(const pm_exec_config *cfg)
{
    return pm_mpi_size() * cfg->threads;
}

static const pm_exec_methods exec_mpi = {
    .version = 7,
    .name = "mpi",
    .state_size = sizeof(mpi_state),
    .open = mpi_open,
    .workers = mpi_workers,
    .submit = mpi_submit,
    .notify = mpi_notify,
    .wait = mpi_wait,
    .close = mpi_close,
    .follower = mpi_follower,
    .share = mpi_share,
    .follows = mpi_follows,
    .ships = 1,
    .worker_state = 1,
    .state_workers = mpi_state_workers,
};

/* ---------------------------------------------------------- registration */

/* The core runs PM_MPI on whatever table was registered for it, so the
 * library registers itself: when it is loaded (a constructor, as the wasm
 * package's kernels do: a PM_MPI call before pm_mpi_init then says PM_ENOMPI,
 * as documented, rather than PM_ENOTSUP), and again from pm_mpi_init (for
 * toolchains without constructors, and static links, where this file is in
 * the program only because it calls pm_mpi_init). Registering twice is
 * harmless. A program that does not link libparmap_mpi gets PM_ENOTSUP. */
static void register_mpi(void)
{
    (void)pm_exec_register(PM_MPI, &exec_mpi);
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((constructor)) static void register_at_load(void)
{
    register_mpi();
}
#endif

/* ------------------------------------------------------------ public API */

static int we_initialized;

/* Whether an MPI launcher (mpirun, mpiexec, srun) started this process. */
static int launched(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK",
                                       "PMI_SIZE", "MPI_LOCALNRANKS", "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

int pm_mpi_init(int *argc, char ***argv)
{
    int inited = 0, provided = 0;
    register_mpi();
    MPI_Initialized(&inited);
    if (!inited) {
        if (!launched())
            return PM_ENOMPI;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
            return PM_ESYS;
        we_initialized = 1;
    }
    return mpi_ready();
}

int pm_mpi_finalize(void)
{
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (we_initialized && !finalized)
        MPI_Finalize();
    we_initialized = 0;
    return PM_OK;
}

int pm_mpi_rank(void)
{
    int r = 0;
    if (mpi_ready() != PM_ENOMPI)
        MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int pm_mpi_size(void)
{
    int s = 1;
    if (mpi_ready() != PM_ENOMPI)
        MPI_Comm_size(MPI_COMM_WORLD, &s);
    return s;
}
