/* Workers, retries and signals (see scheduler.h). */
#include "scheduler.h"

#include <errno.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* How often a waiting thread looks at the stop level. */
#define POLL_MS         100
#define BACKOFF_BASE_MS 1000u
#define BACKOFF_CAP_MS  60000u

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t monotonic_ms(void)
{
	return gw_monotonic_us() / 1000;
}

char *gw_source_budget_key(const struct gw_pipeline *pipeline)
{
	const struct gw_plugin *desc = &pipeline->source->desc;
	for (const struct gw_option *o = desc->options; o != NULL && o->name != NULL; o++) {
		if (strcmp(o->name, "host") != 0 || o->type != GW_OPT_STRING)
			continue;
		const char *host = NULL;
		if (pipeline->source_config != NULL)
			memcpy(&host, (const char *)pipeline->source_config + o->offset,
			       sizeof(host));
		if (host != NULL)
			return gw_xasprintf("source %s %s", desc->name, host);
	}
	return gw_xasprintf("source %s", desc->name);
}

uint32_t gw_backoff_ms(unsigned retry, uint32_t retry_after_ms, double random01)
{
	uint64_t ceiling = BACKOFF_BASE_MS;
	for (unsigned i = 0; i < retry && ceiling < BACKOFF_CAP_MS; i++)
		ceiling *= 2;
	if (ceiling > BACKOFF_CAP_MS)
		ceiling = BACKOFF_CAP_MS;
	if (random01 < 0 || random01 >= 1)
		random01 = 0;
	uint32_t delay = (uint32_t)(random01 * (double)ceiling);
	return delay > retry_after_ms ? delay : retry_after_ms;
}

static double random_unit(void)
{
	uint32_t r = 0;
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (uint32_t)now_ms() * 2654435761u;
	return (double)r / 4294967296.0;
}

/* Sleep @p ms unless a stop is requested first; false if it was. */
static bool sleep_unless_stopped(uint32_t ms)
{
	int64_t until = monotonic_ms() + ms;
	while (gw_cancel_level() == 0) {
		int64_t left = until - monotonic_ms();
		if (left <= 0)
			return true;
		struct timespec ts = {.tv_sec = 0,
		                      .tv_nsec = (left < POLL_MS ? left : POLL_MS) * 1000000L};
		nanosleep(&ts, NULL);
	}
	return false;
}

/* ---- final status ---- */

static uint64_t migrated_in_run(const struct gw_mailbox_report *r)
{
	uint64_t n = 0;
	for (size_t i = 0; i < r->folder_count; i++)
		n += r->folders[i].migrated;
	return n;
}

static bool anything_failed(const struct gw_mailbox_report *r)
{
	for (size_t i = 0; i < r->folder_count; i++) {
		if (r->folders[i].error != NULL || r->folders[i].failed > 0)
			return true;
	}
	return false;
}

enum gw_mailbox_status gw_mailbox_final_status(gw_status last, const struct gw_mailbox_report *r)
{
	if (last == GW_OK)
		return anything_failed(r) ? GW_MAILBOX_PARTIAL : GW_MAILBOX_COMPLETED;
	if (last == GW_ERR_CANCELLED)
		return GW_MAILBOX_INTERRUPTED;
	return migrated_in_run(r) > 0 ? GW_MAILBOX_PARTIAL : GW_MAILBOX_FAILED;
}

/* ---- workers ---- */

struct worker {
	struct gw_sched *sched;
	struct gw_sched_queue *queue;
	pthread_t thread;
	bool started;
};

/* Shared by workers and the main thread: who has finished. */
static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static size_t workers_done;

static bool retryable(gw_status st)
{
	return st == GW_ERR_SESSION || st == GW_ERR_THROTTLED;
}

/* Attempts with backoff in between; returns how the last one ended. */
static gw_status run_attempts(struct gw_sched_job *sj, struct gw_mailbox_job *job,
                              struct gw_worker_res *res, unsigned retries, struct gw_ctx *ctx)
{
	for (unsigned retry = 0;; retry++) {
		if (!gw_budget_acquire_pair(sj->source_budget, sj->sink_budget, true)) {
			if (job->report.error == NULL)
				gw_mailbox_report_set_error(&job->report, "interrupted");
			return GW_ERR_CANCELLED;
		}
		uint32_t retry_after = 0;
		gw_status st = gw_migrate_attempt(job, res, &retry_after);
		gw_budget_release_pair(sj->source_budget, sj->sink_budget);
		if (!retryable(st))
			return st;
		if (retry >= retries) {
			char *text =
			        gw_xasprintf("%s (gave up after %u attempt%s)", job->report.error,
			                     retry + 1, retry == 0 ? "" : "s");
			gw_mailbox_report_set_error(&job->report, text);
			free(text);
			return st;
		}
		uint32_t delay = gw_backoff_ms(retry, retry_after, random_unit());
		gw_log(ctx, GW_LOG_WARN, "%s; retrying in %.1f s (retry %u of %u)",
		       job->report.error, delay / 1000.0, retry + 1, retries);
		if (!sleep_unless_stopped(delay))
			return GW_ERR_CANCELLED;
	}
}

static void log_finish(struct gw_ctx *ctx, const struct gw_mailbox_report *r)
{
	struct gw_counts c = {0};
	gw_counts_add_mailbox(&c, r);
	gw_log(ctx, r->status == GW_MAILBOX_COMPLETED ? GW_LOG_INFO : GW_LOG_WARN,
	       "%s: %llu migrated, %llu already present, %llu skipped, %llu failed, %.1f MB in "
	       "%.1f s%s%s",
	       gw_mailbox_status_name(r->status), (unsigned long long)c.migrated,
	       (unsigned long long)c.already_present,
	       (unsigned long long)(c.skipped_too_large + c.skipped_over_cap + c.skipped_filtered),
	       (unsigned long long)c.failed_messages, (double)c.bytes / 1e6,
	       (double)(r->finished - r->started) / 1000.0, r->error != NULL ? ": " : "",
	       r->error != NULL ? r->error : "");
}

static void run_job(struct gw_sched *s, struct gw_sched_job *sj, struct gw_worker_res *res,
                    unsigned retries, const char *state_error)
{
	struct gw_mailbox_job job;
	gw_mailbox_job_init(&job, sj->rt, sj->mailbox);
	job.source_budget = sj->source_budget;
	job.sink_budget = sj->sink_budget;
	struct gw_ctx ctx = {.pipeline = sj->rt->name, .mailbox = sj->mailbox->email};
	job.report.started = now_ms();
	gw_log(&ctx, GW_LOG_INFO, "started");
	gw_status st;
	if (sj->rt->init_error != NULL) {
		gw_mailbox_report_set_error(&job.report, sj->rt->init_error);
		st = GW_ERR_CONFIG;
	} else if (state_error != NULL) {
		gw_mailbox_report_set_error(&job.report, state_error);
		st = GW_ERR_MAILBOX;
	} else {
		st = run_attempts(sj, &job, res, retries, &ctx);
	}
	job.report.status = gw_mailbox_final_status(st, &job.report);
	if (job.report.status == GW_MAILBOX_INTERRUPTED && job.report.error == NULL)
		gw_mailbox_report_set_error(&job.report, "interrupted");
	job.report.finished = now_ms();
	/* The job's outstanding share of the total will never be copied now. */
	atomic_fetch_sub(&s->progress.planned, job.outstanding);
	log_finish(&ctx, &job.report);
	if (!atomic_exchange(&sj->claimed, true))
		gw_run_report_add(s->report, &job.report);
	atomic_fetch_add(&s->progress.mailboxes_finished, 1);
	gw_mailbox_job_free(&job);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct gw_sched *s = w->sched;
	struct gw_worker_res res = {.progress = &s->progress, .state_path = s->state_path};
	char *state_error = NULL;
	if (!gw_state_open(s->state_path, &res.state, &state_error)) {
		char *text = gw_xasprintf("cannot open state %s: %s", s->state_path,
		                          state_error != NULL ? state_error : "unknown error");
		free(state_error);
		state_error = text;
		res.state = NULL;
	}
	res.spool = gw_spool_new(NULL, 0);
	while (gw_cancel_level() == 0) {
		size_t i = atomic_fetch_add(&w->queue->next, 1);
		if (i >= w->queue->count)
			break;
		run_job(s, &w->queue->jobs[i], &res, w->queue->retries, state_error);
	}
	gw_spool_free(res.spool);
	if (res.state != NULL)
		gw_state_close(res.state);
	free(state_error);
	pthread_mutex_lock(&done_lock);
	workers_done++;
	pthread_cond_broadcast(&done_cond);
	pthread_mutex_unlock(&done_lock);
	return NULL;
}

static uint64_t total_jobs(const struct gw_sched *s)
{
	uint64_t n = 0;
	for (size_t q = 0; q < s->queue_count; q++)
		n += s->queues[q].count;
	return n;
}

static void log_progress(struct gw_sched *s)
{
	struct gw_progress *p = &s->progress;
	uint64_t done = atomic_load(&p->done);
	gw_log(NULL, GW_LOG_INFO,
	       "progress: %llu of %llu message(s) copied, %.1f MB, %llu failed; %llu of %llu "
	       "mailbox(es) finished",
	       (unsigned long long)done, (unsigned long long)(done + atomic_load(&p->planned)),
	       (double)atomic_load(&p->bytes) / 1e6, (unsigned long long)atomic_load(&p->failed),
	       (unsigned long long)atomic_load(&p->mailboxes_finished),
	       (unsigned long long)total_jobs(s));
}

/* Watch the workers: progress lines, and the grace period after a second signal. */
static bool wait_for_workers(struct gw_sched *s, size_t started)
{
	unsigned interval = s->progress_interval_ms ? s->progress_interval_ms : 5000;
	unsigned grace = s->hard_stop_grace_ms ? s->hard_stop_grace_ms : 5000;
	int64_t next_progress = monotonic_ms() + interval;
	int64_t hard_deadline = 0;
	int seen_level = 0;
	pthread_mutex_lock(&done_lock);
	while (workers_done < started) {
		struct timespec until = gw_deadline_in_ms(250);
		pthread_cond_timedwait(&done_cond, &done_lock, &until);
		int level = gw_cancel_level();
		int64_t now = monotonic_ms();
		if (level > seen_level) {
			seen_level = level;
			gw_log(NULL, GW_LOG_WARN,
			       level == 1
			               ? "stopping: finishing the messages in flight (signal again "
			                 "to stop at once)"
			               : "stopping at once");
			if (level >= 2)
				hard_deadline = now + grace;
		}
		if (hard_deadline != 0 && now >= hard_deadline && workers_done < started) {
			pthread_mutex_unlock(&done_lock);
			return false;
		}
		if (s->progress_lines && now >= next_progress && workers_done < started) {
			pthread_mutex_unlock(&done_lock);
			log_progress(s);
			pthread_mutex_lock(&done_lock);
			next_progress = now + interval;
		}
	}
	pthread_mutex_unlock(&done_lock);
	return true;
}

/* Workers never take SIGINT/SIGTERM: the main thread does, so the handler
 * never interrupts a plugin's read in the middle of a protocol exchange. */
static void block_stop_signals(sigset_t *old)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

bool gw_sched_run(struct gw_sched *s)
{
	size_t worker_count = 0;
	for (size_t q = 0; q < s->queue_count; q++) {
		unsigned n = s->queues[q].workers ? s->queues[q].workers : 1;
		worker_count += n < s->queues[q].count ? n : s->queues[q].count;
	}
	struct worker *workers = gw_xcalloc(worker_count ? worker_count : 1, sizeof(*workers));
	workers_done = 0;
	size_t started = 0;
	sigset_t old_mask;
	block_stop_signals(&old_mask);
	for (size_t q = 0; q < s->queue_count; q++) {
		struct gw_sched_queue *queue = &s->queues[q];
		unsigned n = queue->workers ? queue->workers : 1;
		for (size_t i = 0; i < n && i < queue->count; i++) {
			struct worker *w = &workers[started];
			w->sched = s;
			w->queue = queue;
			int rc = pthread_create(&w->thread, NULL, worker_main, w);
			if (rc != 0) {
				gw_log(NULL, GW_LOG_ERROR, "cannot start a worker thread: %s",
				       strerror(rc));
				break;
			}
			w->started = true;
			started++;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	bool joined = wait_for_workers(s, started);
	if (!joined) {
		/* Workers blocked in a plugin call keep their memory: it is never freed. */
		for (size_t i = 0; i < started; i++)
			pthread_detach(workers[i].thread);
		return false;
	}
	for (size_t i = 0; i < started; i++)
		pthread_join(workers[i].thread, NULL);
	free(workers);
	return true;
}

/* ---- signals ---- */

static atomic_int signals_seen;

static void on_stop_signal(int signo)
{
	(void)signo;
	int n = atomic_fetch_add(&signals_seen, 1) + 1;
	gw_cancel_request(n >= 2 ? 2 : 1);
	static const char first[] = "\ngodwit: stopping after the messages in flight; signal again "
	                            "to stop at once\n";
	static const char second[] = "\ngodwit: stopping at once\n";
	ssize_t ignored = n >= 2 ? write(STDERR_FILENO, second, sizeof(second) - 1)
	                         : write(STDERR_FILENO, first, sizeof(first) - 1);
	(void)ignored;
}

void gw_signals_install(struct gw_signal_state *state)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	atomic_store(&signals_seen, 0);
	sigaction(SIGINT, &sa, &state->old_int);
	sigaction(SIGTERM, &sa, &state->old_term);
	struct sigaction ignore;
	memset(&ignore, 0, sizeof(ignore));
	ignore.sa_handler = SIG_IGN;
	sigemptyset(&ignore.sa_mask);
	/* A server closing the connection must be an error return, not a killed process. */
	sigaction(SIGPIPE, &ignore, &state->old_pipe);
	state->installed = true;
}

void gw_signals_restore(struct gw_signal_state *state)
{
	if (!state->installed)
		return;
	sigaction(SIGINT, &state->old_int, NULL);
	sigaction(SIGTERM, &state->old_term, NULL);
	sigaction(SIGPIPE, &state->old_pipe, NULL);
	state->installed = false;
}
