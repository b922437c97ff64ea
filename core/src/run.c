/* gw_run: a plan in, an exit code out. Opens the state and the report,
 * initialises each pipeline's plugins once, hands the mailboxes to the
 * scheduler, then closes the report and prints the summary. */
#include "run.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "migrate.h"
#include "report.h"
#include "scheduler.h"
#include "state.h"
#include "util.h"

/* Exit codes (documented in the CLI's help). */
#define EXIT_ALL_COMPLETED    0
#define EXIT_SOMETHING_FAILED 1
#define EXIT_CONFIG           2

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct run {
	struct gw_plan *plan;
	struct gw_pipeline_rt *rts;
	struct gw_sched sched;
	struct gw_budget **budgets;
	size_t budget_count;
	int64_t started;
	char *state_path;
	struct gw_state *state; /* the main thread's own handle: runs table */
	int64_t run_id;
};

static struct gw_budget *find_or_add_budget(struct run *r, const char *key, unsigned limit)
{
	for (size_t i = 0; i < r->budget_count; i++) {
		if (strcmp(gw_budget_key(r->budgets[i]), key) == 0) {
			gw_budget_limit_min(r->budgets[i], limit);
			return r->budgets[i];
		}
	}
	r->budgets = gw_xrealloc(r->budgets, (r->budget_count + 1) * sizeof(*r->budgets));
	r->budgets[r->budget_count] = gw_budget_new(key, limit);
	return r->budgets[r->budget_count++];
}

static void init_pipelines(struct run *r)
{
	r->rts = gw_xcalloc(r->plan->pipeline_count ? r->plan->pipeline_count : 1, sizeof(*r->rts));
	for (size_t i = 0; i < r->plan->pipeline_count; i++) {
		struct gw_pipeline_rt *rt = &r->rts[i];
		if (!gw_pipeline_rt_init(rt, &r->plan->pipelines[i]))
			gw_log(&rt->source_ctx, GW_LOG_ERROR,
			       "cannot start pipeline: %s; its mailboxes fail", rt->init_error);
	}
}

static void build_queues(struct run *r)
{
	struct gw_sched *s = &r->sched;
	s->queue_count = r->plan->pipeline_count;
	s->queues = gw_xcalloc(s->queue_count ? s->queue_count : 1, sizeof(*s->queues));
	for (size_t i = 0; i < r->plan->pipeline_count; i++) {
		struct gw_pipeline *p = &r->plan->pipelines[i];
		const struct gw_pipeline_cfg *cfg = p->cfg;
		char *source_key = gw_source_budget_key(p);
		char *sink_key =
		        gw_xasprintf("sink %s (pipeline %s)", p->sink->desc.name, cfg->name);
		struct gw_budget *source =
		        find_or_add_budget(r, source_key, cfg->source_connections);
		struct gw_budget *sink = find_or_add_budget(r, sink_key, cfg->sink_connections);
		free(source_key);
		free(sink_key);
		struct gw_sched_queue *q = &s->queues[i];
		q->count = p->mailboxes.count;
		q->jobs = gw_xcalloc(q->count ? q->count : 1, sizeof(*q->jobs));
		q->workers = cfg->mailboxes_in_parallel;
		q->retries = cfg->retries;
		for (size_t m = 0; m < q->count; m++) {
			struct gw_sched_job *job = &q->jobs[m];
			job->rt = &r->rts[i];
			job->mailbox = &p->mailboxes.items[m].mbx;
			job->source_budget = source;
			job->sink_budget = sink;
		}
	}
}

/* Mailboxes no worker reported (never started, or a worker still blocked
 * after a hard stop) still get a line in the report: nothing is silently left out. */
static void report_unfinished(struct run *r)
{
	for (size_t q = 0; q < r->sched.queue_count; q++) {
		struct gw_sched_queue *queue = &r->sched.queues[q];
		for (size_t i = 0; i < queue->count; i++) {
			struct gw_sched_job *job = &queue->jobs[i];
			if (atomic_exchange(&job->claimed, true))
				continue;
			struct gw_mailbox_report m = {
			        .pipeline = job->rt->name,
			        .email = job->mailbox->email,
			        .status = GW_MAILBOX_INTERRUPTED,
			        .max_size = job->rt->pipeline->cfg->max_size,
			};
			bool started = i < atomic_load(&queue->next);
			gw_mailbox_report_set_error(
			        &m, started ? "stopped at once before this mailbox finished"
			                    : "not started: the run was stopped");
			gw_run_report_add(r->sched.report, &m);
			gw_mailbox_report_free(&m);
		}
	}
}

static bool close_report(struct run *r, int64_t finished)
{
	const char **names = gw_xcalloc(r->plan->pipeline_count + 1, sizeof(*names));
	for (size_t i = 0; i < r->plan->pipeline_count; i++)
		names[i] = r->plan->pipelines[i].cfg->name;
	struct gw_budget_report *budgets =
	        gw_xcalloc(r->budget_count ? r->budget_count : 1, sizeof(*budgets));
	for (size_t i = 0; i < r->budget_count; i++)
		gw_budget_describe(r->budgets[i], &budgets[i]);
	char *error = NULL;
	bool ok = gw_run_report_close(r->sched.report, finished, names, r->plan->pipeline_count,
	                              budgets, r->budget_count, &error);
	if (!ok)
		gw_log(NULL, GW_LOG_ERROR, "%s", error != NULL ? error : "cannot write the report");
	free(error);
	free(budgets);
	free(names);
	return ok;
}

static int exit_code_of(const struct gw_counts *t)
{
	bool all_good = t->completed == t->mailboxes && t->failed_messages == 0;
	return all_good ? EXIT_ALL_COMPLETED : EXIT_SOMETHING_FAILED;
}

static const char *run_status(const struct gw_counts *t)
{
	if (t->interrupted > 0)
		return "cancelled";
	if (t->completed == t->mailboxes && t->failed_messages == 0)
		return "completed";
	return t->completed + t->partial > 0 ? "partial" : "failed";
}

/* A dry run keeps its own state beside the real one ("x.db" -> "x.dry-run.db"):
 * what went into the dry-run Maildir must not count as migrated for real. */
static char *state_path_of(const struct gw_plan *plan)
{
	const char *path = plan->profile->state_path;
	if (!plan->dry_run)
		return gw_xstrdup(path);
	size_t len = strlen(path);
	if (len > 3 && strcmp(path + len - 3, ".db") == 0)
		return gw_xasprintf("%.*s.dry-run.db", (int)(len - 3), path);
	return gw_xasprintf("%s.dry-run", path);
}

static bool open_run(struct run *r)
{
	const struct gw_profile *profile = r->plan->profile;
	char *error = NULL;
	r->state_path = state_path_of(r->plan);
	if (!gw_state_open(r->state_path, &r->state, &error)) {
		fprintf(stderr, "godwit: cannot open state %s: %s\n", r->state_path,
		        error != NULL ? error : "unknown error");
		free(error);
		return false;
	}
	if (!gw_state_run_begin(r->state, &r->run_id, &error)) {
		gw_log(NULL, GW_LOG_WARN, "state: cannot record the run: %s", error);
		free(error);
		error = NULL;
		r->run_id = 0;
	}
	r->sched.report =
	        gw_run_report_open(profile->report_dir, r->started, r->plan->dry_run, &error);
	if (r->sched.report == NULL) {
		fprintf(stderr, "godwit: %s\n", error != NULL ? error : "cannot create the report");
		free(error);
		gw_state_close(r->state);
		return false;
	}
	return true;
}

static void free_run(struct run *r)
{
	for (size_t i = 0; i < r->plan->pipeline_count; i++)
		gw_pipeline_rt_fini(&r->rts[i]);
	free(r->rts);
	for (size_t q = 0; q < r->sched.queue_count; q++)
		free(r->sched.queues[q].jobs);
	free(r->sched.queues);
	for (size_t i = 0; i < r->budget_count; i++)
		gw_budget_free(r->budgets[i]);
	free(r->budgets);
	gw_run_report_free(r->sched.report);
	gw_state_close(r->state);
	free(r->state_path);
}

int gw_run(struct gw_plan *plan, const struct gw_run_options *options)
{
	struct run r = {.plan = plan, .started = now_ms()};
	if (!open_run(&r)) {
		free(r.state_path);
		return EXIT_CONFIG;
	}
	r.sched.state_path = r.state_path;
	r.sched.progress_lines = options == NULL || options->progress;
	if (plan->dry_run)
		gw_log(NULL, GW_LOG_INFO,
		       "dry run: every sink is a maildir under the dry-run folder, state in %s",
		       r.state_path);
	init_pipelines(&r);
	build_queues(&r);

	struct gw_signal_state signals = {0};
	gw_signals_install(&signals);
	bool joined = gw_sched_run(&r.sched);
	gw_signals_restore(&signals);

	report_unfinished(&r);
	int64_t finished = now_ms();
	bool report_ok = close_report(&r, finished);
	const struct gw_counts *totals = gw_run_report_totals(r.sched.report);
	char *error = NULL;
	if (r.run_id != 0 && !gw_state_run_end(r.state, r.run_id, run_status(totals), &error)) {
		gw_log(NULL, GW_LOG_WARN, "state: cannot record the end of the run: %s", error);
		free(error);
	}
	gw_report_print_summary(stdout, totals, finished - r.started,
	                        report_ok ? gw_run_report_json_path(r.sched.report) : NULL,
	                        gw_run_report_csv_path(r.sched.report));
	int code = report_ok ? exit_code_of(totals) : EXIT_SOMETHING_FAILED;
	if (!joined) {
		/* A worker is still inside a plugin call (e.g. a blocking read): its
		 * pipeline and plugins cannot be freed under it. State is safe on
		 * disk (pending rows are resolved next time), the report is written:
		 * leave without unwinding. */
		fflush(NULL);
		_exit(code);
	}
	free_run(&r);
	return code;
}
