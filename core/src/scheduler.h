/* The scheduler: worker threads pulling mailbox jobs, connection budgets,
 * retries with backoff, and the signals that stop a run.
 *
 * Each pipeline has its own queue (mailboxes in CSV order) and
 * `mailboxes_in_parallel` workers. A worker holds one source and one sink
 * connection from the budgets while an attempt runs and gives them back
 * before it sleeps for a retry, so the limits hold during reconnects too.
 * The attempt's extra lanes (migrate.h) take further slots only if they are
 * free and no worker waits for one, and give them back as each lane ends.
 * Source budgets are shared by every pipeline that reaches the same host
 * with the same plugin. */
#ifndef GW_SCHEDULER_H
#define GW_SCHEDULER_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "budget.h"
#include "migrate.h"
#include "report.h"

/* ---- connection budgets ---- */

/* "source <plugin> <host>" from the source plugin's option named "host" (a
 * string option, read through the option table), or "source <plugin>". Caller frees. */
char *gw_source_budget_key(const struct gw_pipeline *pipeline);

/* Delay before retry @p retry (0-based): exponential from 1 s, capped at 60 s,
 * full jitter (@p random01 in [0,1)), and never shorter than the server's retry-after. */
uint32_t gw_backoff_ms(unsigned retry, uint32_t retry_after_ms, double random01);

/* ---- the run ---- */

/* One mailbox to do. */
struct gw_sched_job {
	struct gw_pipeline_rt *rt;
	const struct gw_mailbox *mailbox;
	struct gw_budget *source_budget;
	struct gw_budget *sink_budget;
	atomic_bool claimed; /* its report was written (by its worker or, at a hard stop, by run) */
};

/* One pipeline's queue. */
struct gw_sched_queue {
	struct gw_sched_job *jobs;
	size_t count;
	atomic_size_t next;
	unsigned workers;
	unsigned retries;
};

struct gw_sched {
	struct gw_sched_queue *queues;
	size_t queue_count;
	const char *state_path;
	struct gw_progress progress;
	struct gw_run_report *report;
	bool progress_lines;
	unsigned progress_interval_ms; /* 0: 5000 */
	unsigned hard_stop_grace_ms;   /* after a second signal; 0: 5000 */
};

/* Run every queue to its end (or until stopped). True if every worker was
 * joined; false if a second signal came and some worker did not return
 * within the grace period (it may still be blocked in a plugin call). */
bool gw_sched_run(struct gw_sched *sched);

/* The status a mailbox ends with, from how its last attempt ended and what it did. */
enum gw_mailbox_status gw_mailbox_final_status(gw_status last, const struct gw_mailbox_report *r);

/* SIGINT/SIGTERM: the first asks for a graceful stop (gw_cancel_request(1)),
 * the second for an immediate one (2). SIGPIPE is ignored while installed. */
struct gw_signal_state {
	struct sigaction old_int, old_term, old_pipe;
	bool installed;
};
void gw_signals_install(struct gw_signal_state *state);
void gw_signals_restore(struct gw_signal_state *state);

#endif
