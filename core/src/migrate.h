/* One mailbox job: list and map folders, scan, select, and copy newest
 * first in batches, committing state only after the sink made a batch
 * durable. One call is one attempt: it scans on one pair of sessions (the
 * scheduler's), then copies in lanes, each with a pair of its own, as many as
 * connections_per_mailbox and the budgets allow. The scheduler owns retries,
 * backoff and the first pair's budget slots around it. */
#ifndef GW_MIGRATE_H
#define GW_MIGRATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <godwit/status.h>

#include "budget.h"
#include "foldermap.h"
#include "log.h"
#include "plan.h"
#include "report.h"
#include "spool.h"
#include "state.h"

/* A pipeline whose plugins are initialised (once, before workers start). */
struct gw_pipeline_rt {
	struct gw_pipeline *pipeline;
	const char *name;
	struct gw_ctx source_ctx, sink_ctx; /* for init; live as long as the plugin states */
	char source_label[64], sink_label[64];
	void *source_state, *sink_state;
	bool source_ready, sink_ready;
	char *init_error; /* set if init failed: every mailbox of the pipeline fails with it */
	struct gw_folder_rules rules;
};

/* Calls source.init and sink.init. On failure rt->init_error says why. */
bool gw_pipeline_rt_init(struct gw_pipeline_rt *rt, struct gw_pipeline *pipeline);
void gw_pipeline_rt_fini(struct gw_pipeline_rt *rt);

/* Run-wide counters for the progress line (updated by workers). */
struct gw_progress {
	_Atomic uint64_t planned; /* selected for copying and not yet copied or failed */
	_Atomic uint64_t done;    /* committed */
	_Atomic uint64_t failed;
	_Atomic uint64_t bytes;
	_Atomic uint64_t mailboxes_finished;
};

/* What a worker lends to the attempts it runs. */
struct gw_worker_res {
	struct gw_state *state;
	struct gw_spool *spool;
	struct gw_progress *progress;
	const char *state_path; /* lanes open handles of their own; NULL: no lanes */
};

/* A mailbox job; lives across attempts. */
struct gw_mailbox_job {
	struct gw_pipeline_rt *rt;
	const struct gw_mailbox *mailbox;
	struct gw_mailbox_report report;
	_Atomic uint64_t outstanding; /* this job's share of gw_progress::planned still to do */
	/* Where lanes take their extra connections from; NULL: no lanes. */
	struct gw_budget *source_budget, *sink_budget;
};

void gw_mailbox_job_init(struct gw_mailbox_job *job, struct gw_pipeline_rt *rt,
                         const struct gw_mailbox *mailbox);
void gw_mailbox_job_free(struct gw_mailbox_job *job);

/* One attempt. GW_OK when the mailbox ran to its end (folder and message
 * failures are in the report); otherwise the status that stopped it, with
 * the text in job->report.error and a requested pause in *retry_after_ms.
 * GW_ERR_CANCELLED when a stop was requested. */
gw_status gw_migrate_attempt(struct gw_mailbox_job *job, struct gw_worker_res *res,
                             uint32_t *retry_after_ms);

/* Lower-case hex of the first 12 bytes of SHA-256("pipeline\0mailbox\0folder\0uidvalidity\0uid")
 * (numbers in decimal): the origin key handed to sinks. */
void gw_origin_key(const char *pipeline, const char *mailbox, const char *folder,
                   uint32_t uidvalidity, uint32_t uid, char out[25]);

#endif
