/* The run report: what happened to every mailbox, folder and message that
 * was not migrated, as JSON (for machines) and CSV (for spreadsheets), plus
 * the one-screen console summary.
 *
 * The report is streamed: each mailbox is written out the moment it
 * finishes and its per-message lists are freed, so a run over thousands of
 * mailboxes holds at most the details of the mailboxes in progress. The
 * files are written as <name>.tmp and renamed when the run ends; the JSON
 * is a flat "mailboxes" array (in completion order, each naming its
 * pipeline) followed by per-pipeline and run totals. */
#ifndef GW_REPORT_H
#define GW_REPORT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

enum gw_mailbox_status {
	GW_MAILBOX_COMPLETED = 0,
	GW_MAILBOX_PARTIAL,
	GW_MAILBOX_FAILED,
	GW_MAILBOX_INTERRUPTED,
};
const char *gw_mailbox_status_name(enum gw_mailbox_status status);

/* Why a message was not migrated. */
enum gw_skip_reason {
	GW_SKIP_TOO_LARGE = 0,
	GW_SKIP_OVER_CAP,
	GW_SKIP_FILTERED,
};

/* 16 bytes: over-cap lists of large mailboxes can hold hundreds of thousands. */
struct gw_report_skip {
	uint32_t uid;
	uint32_t reason; /* enum gw_skip_reason */
	uint64_t value;  /* too large: the message's size; filtered: its internal date */
};

struct gw_report_failure {
	uint32_t uid;
	char *reason;
};

struct gw_folder_report {
	char *source_name;
	char *sink_folder; /* sink folder id, NULL if not (yet) ensured */
	char *error;       /* folder-level failure, NULL if none */
	uint64_t found;    /* messages the source holds */
	uint64_t migrated; /* copied in this run */
	uint64_t already_present;
	uint64_t rematched; /* already present, found again after a UIDVALIDITY change */
	uint64_t skipped_too_large, skipped_over_cap, skipped_filtered;
	uint64_t failed;
	uint64_t bytes; /* migrated bytes */
	/* The sink's own size limit for this folder (0: none) and who sets it, e.g.
	 * "destination APPENDLIMIT 60000"; too-large skips name it when it is below
	 * the mailbox's max_size. */
	uint64_t sink_limit;
	char *sink_limit_by;
	struct gw_report_skip *skips;
	size_t skip_count, skip_cap;
	struct gw_report_failure *failures;
	size_t failure_count, failure_cap;
};

struct gw_collision_report {
	char *sink_folder;
	char *first; /* source folder names */
	char *second;
};

struct gw_mailbox_report {
	const char *pipeline; /* owned by the plan */
	const char *email;
	enum gw_mailbox_status status;
	char *error;     /* why the mailbox stopped, NULL if it did not */
	int64_t started; /* wall clock, ms since the epoch; 0 if never started */
	int64_t finished;
	unsigned attempts;
	unsigned connections; /* the most source connections one attempt had open at once */
	uint64_t max_size;    /* the limit too-large messages exceeded */
	struct gw_folder_report *folders;
	size_t folder_count;
	struct gw_collision_report *collisions;
	size_t collision_count;
	char **warnings;
	size_t warning_count;
};

/* Folder entry of @p mailbox for @p source_name, created (zeroed) if new. */
struct gw_folder_report *gw_mailbox_report_folder(struct gw_mailbox_report *mailbox,
                                                  const char *source_name);
void gw_folder_report_skip(struct gw_folder_report *folder, uint32_t uid,
                           enum gw_skip_reason reason, uint64_t value);
void gw_folder_report_fail(struct gw_folder_report *folder, uint32_t uid, const char *reason);
/* Record the sink's size limit for the folder (0 and NULL clear it). */
void gw_folder_report_set_sink_limit(struct gw_folder_report *folder, uint64_t limit,
                                     const char *set_by);
/* Forget skip lists and counts that a new attempt recomputes (found, already present,
 * skipped); migrated, bytes and failures stay. */
void gw_folder_report_reset_scan(struct gw_folder_report *folder);
void gw_mailbox_report_collision(struct gw_mailbox_report *mailbox, const char *sink_folder,
                                 const char *first, const char *second);
void gw_mailbox_report_warn(struct gw_mailbox_report *mailbox, const char *fmt, ...)
        GW_PRINTF(2, 3);
/* Replace the error text (NULL clears it). */
void gw_mailbox_report_set_error(struct gw_mailbox_report *mailbox, const char *text);
void gw_mailbox_report_free(struct gw_mailbox_report *mailbox);

/* Sums over folders. */
struct gw_counts {
	uint64_t mailboxes, completed, partial, failed, interrupted;
	uint64_t found, migrated, already_present, skipped_too_large, skipped_over_cap,
	        skipped_filtered, failed_messages, bytes;
};
void gw_counts_add_mailbox(struct gw_counts *counts, const struct gw_mailbox_report *mailbox);

/* ---- serialisation (exposed for tests) ---- */

/* @p len bytes of @p s as a JSON string with quotes: '"', '\\' and control
 * characters escaped, valid UTF-8 passed through, each invalid byte as \ufffd. */
void gw_json_string(struct gw_buf *out, const char *s, size_t len);
/* A CSV field (RFC 4180): quoted if it holds a comma, quote, CR or LF. */
void gw_csv_field(struct gw_buf *out, const char *s);
/* One mailbox as a JSON object. */
void gw_report_mailbox_json(struct gw_buf *out, const struct gw_mailbox_report *mailbox);
/* The CSV header line and the rows of one mailbox (one per folder, or one without a folder). */
void gw_report_csv_header(struct gw_buf *out);
void gw_report_mailbox_csv(struct gw_buf *out, const struct gw_mailbox_report *mailbox);
/* "2024-03-01T12:00:00.123Z" */
void gw_format_utc_ms(int64_t epoch_ms, char out[32]);

/* ---- the report of one run ---- */

/* A connection budget as the report shows it. */
struct gw_budget_report {
	const char *key; /* "source imap 127.0.0.1", "sink maildir (pipeline p)" */
	unsigned limit;
	unsigned peak;
};

struct gw_run_report;

/* Create report-<UTC time>.json/.csv (as .tmp until closed) under @p dir,
 * creating @p dir if needed. NULL and *error if that is not possible.
 * @p dry_run is recorded in the JSON. */
struct gw_run_report *gw_run_report_open(const char *dir, int64_t started_ms, bool dry_run,
                                         char **error);
/* Write one finished mailbox (thread-safe) and add it to the totals. */
void gw_run_report_add(struct gw_run_report *report, const struct gw_mailbox_report *mailbox);
/* Write totals, close and rename the files into place. *error on failure. */
bool gw_run_report_close(struct gw_run_report *report, int64_t finished_ms,
                         const char *const *pipelines, size_t pipeline_count,
                         const struct gw_budget_report *budgets, size_t budget_count, char **error);
const char *gw_run_report_json_path(const struct gw_run_report *report);
const char *gw_run_report_csv_path(const struct gw_run_report *report);
const struct gw_counts *gw_run_report_totals(const struct gw_run_report *report);
void gw_run_report_free(struct gw_run_report *report);

/* The one-screen console summary. */
void gw_report_print_summary(FILE *out, const struct gw_counts *totals, int64_t duration_ms,
                             const char *json_path, const char *csv_path);

#endif
