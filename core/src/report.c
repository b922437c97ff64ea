/* Run reports: per-mailbox records, their JSON/CSV form, the streamed report
 * files and the console summary. */
#include "report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef GODWIT_VERSION
#define GODWIT_VERSION "unknown"
#endif

static const char *const status_names[] = {
        [GW_MAILBOX_COMPLETED] = "completed",
        [GW_MAILBOX_PARTIAL] = "partial",
        [GW_MAILBOX_FAILED] = "failed",
        [GW_MAILBOX_INTERRUPTED] = "interrupted",
};

static const char *const skip_reason_names[] = {
        [GW_SKIP_TOO_LARGE] = "too large",
        [GW_SKIP_OVER_CAP] = "over cap",
        [GW_SKIP_FILTERED] = "filtered: older than since",
};

const char *gw_mailbox_status_name(enum gw_mailbox_status status)
{
	if ((size_t)status >= sizeof(status_names) / sizeof(status_names[0]))
		return "unknown";
	return status_names[status];
}

/* ---- the mailbox record ---- */

struct gw_folder_report *gw_mailbox_report_folder(struct gw_mailbox_report *mailbox,
                                                  const char *source_name)
{
	for (size_t i = 0; i < mailbox->folder_count; i++) {
		if (strcmp(mailbox->folders[i].source_name, source_name) == 0)
			return &mailbox->folders[i];
	}
	mailbox->folders = gw_xrealloc(mailbox->folders,
	                               (mailbox->folder_count + 1) * sizeof(*mailbox->folders));
	struct gw_folder_report *folder = &mailbox->folders[mailbox->folder_count++];
	memset(folder, 0, sizeof(*folder));
	folder->source_name = gw_xstrdup(source_name);
	return folder;
}

void gw_folder_report_skip(struct gw_folder_report *folder, uint32_t uid,
                           enum gw_skip_reason reason, uint64_t value)
{
	if (folder->skip_count == folder->skip_cap) {
		folder->skip_cap = folder->skip_cap ? folder->skip_cap * 2 : 16;
		folder->skips =
		        gw_xrealloc(folder->skips, folder->skip_cap * sizeof(*folder->skips));
	}
	folder->skips[folder->skip_count++] =
	        (struct gw_report_skip){.uid = uid, .reason = reason, .value = value};
	switch (reason) {
	case GW_SKIP_TOO_LARGE: folder->skipped_too_large++; break;
	case GW_SKIP_OVER_CAP: folder->skipped_over_cap++; break;
	case GW_SKIP_FILTERED: folder->skipped_filtered++; break;
	}
}

void gw_folder_report_fail(struct gw_folder_report *folder, uint32_t uid, const char *reason)
{
	if (folder->failure_count == folder->failure_cap) {
		folder->failure_cap = folder->failure_cap ? folder->failure_cap * 2 : 8;
		folder->failures = gw_xrealloc(folder->failures,
		                               folder->failure_cap * sizeof(*folder->failures));
	}
	folder->failures[folder->failure_count++] = (struct gw_report_failure){
	        .uid = uid, .reason = gw_xstrdup(reason != NULL ? reason : "failed")};
	folder->failed++;
}

void gw_folder_report_set_sink_limit(struct gw_folder_report *folder, uint64_t limit,
                                     const char *set_by)
{
	free(folder->sink_limit_by);
	folder->sink_limit = limit;
	folder->sink_limit_by = limit > 0 ? gw_xstrdup(set_by != NULL ? set_by : "sink") : NULL;
}

void gw_folder_report_reset_scan(struct gw_folder_report *folder)
{
	free(folder->skips);
	folder->skips = NULL;
	folder->skip_count = folder->skip_cap = 0;
	folder->found = folder->already_present = folder->rematched = 0;
	folder->skipped_too_large = folder->skipped_over_cap = folder->skipped_filtered = 0;
}

void gw_mailbox_report_collision(struct gw_mailbox_report *mailbox, const char *sink_folder,
                                 const char *first, const char *second)
{
	for (size_t i = 0; i < mailbox->collision_count; i++) {
		struct gw_collision_report *c = &mailbox->collisions[i];
		if (strcmp(c->first, first) == 0 && strcmp(c->second, second) == 0)
			return; /* already known from an earlier attempt */
	}
	mailbox->collisions = gw_xrealloc(
	        mailbox->collisions, (mailbox->collision_count + 1) * sizeof(*mailbox->collisions));
	mailbox->collisions[mailbox->collision_count++] = (struct gw_collision_report){
	        .sink_folder = gw_xstrdup(sink_folder),
	        .first = gw_xstrdup(first),
	        .second = gw_xstrdup(second),
	};
}

void gw_mailbox_report_warn(struct gw_mailbox_report *mailbox, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = gw_xvasprintf(fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < mailbox->warning_count; i++) {
		if (strcmp(mailbox->warnings[i], text) == 0) {
			free(text);
			return;
		}
	}
	mailbox->warnings = gw_xrealloc(mailbox->warnings,
	                                (mailbox->warning_count + 1) * sizeof(*mailbox->warnings));
	mailbox->warnings[mailbox->warning_count++] = text;
}

void gw_mailbox_report_set_error(struct gw_mailbox_report *mailbox, const char *text)
{
	free(mailbox->error);
	mailbox->error = text != NULL ? gw_xstrdup(text) : NULL;
}

static void folder_report_free(struct gw_folder_report *folder)
{
	free(folder->source_name);
	free(folder->sink_folder);
	free(folder->error);
	free(folder->sink_limit_by);
	free(folder->skips);
	for (size_t i = 0; i < folder->failure_count; i++)
		free(folder->failures[i].reason);
	free(folder->failures);
}

void gw_mailbox_report_free(struct gw_mailbox_report *mailbox)
{
	if (mailbox == NULL)
		return;
	for (size_t i = 0; i < mailbox->folder_count; i++)
		folder_report_free(&mailbox->folders[i]);
	free(mailbox->folders);
	for (size_t i = 0; i < mailbox->collision_count; i++) {
		free(mailbox->collisions[i].sink_folder);
		free(mailbox->collisions[i].first);
		free(mailbox->collisions[i].second);
	}
	free(mailbox->collisions);
	for (size_t i = 0; i < mailbox->warning_count; i++)
		free(mailbox->warnings[i]);
	free(mailbox->warnings);
	free(mailbox->error);
	mailbox->folders = NULL;
	mailbox->collisions = NULL;
	mailbox->warnings = NULL;
	mailbox->error = NULL;
	mailbox->folder_count = mailbox->collision_count = mailbox->warning_count = 0;
}

void gw_counts_add_mailbox(struct gw_counts *counts, const struct gw_mailbox_report *mailbox)
{
	counts->mailboxes++;
	switch (mailbox->status) {
	case GW_MAILBOX_COMPLETED: counts->completed++; break;
	case GW_MAILBOX_PARTIAL: counts->partial++; break;
	case GW_MAILBOX_FAILED: counts->failed++; break;
	case GW_MAILBOX_INTERRUPTED: counts->interrupted++; break;
	}
	for (size_t i = 0; i < mailbox->folder_count; i++) {
		const struct gw_folder_report *f = &mailbox->folders[i];
		counts->found += f->found;
		counts->migrated += f->migrated;
		counts->already_present += f->already_present;
		counts->skipped_too_large += f->skipped_too_large;
		counts->skipped_over_cap += f->skipped_over_cap;
		counts->skipped_filtered += f->skipped_filtered;
		counts->failed_messages += f->failed;
		counts->bytes += f->bytes;
	}
}

/* ---- JSON ---- */

/* Length of the valid UTF-8 sequence at @p s (at most @p avail bytes), 0 if invalid. */
static size_t utf8_sequence(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n > avail)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

void gw_json_string(struct gw_buf *out, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	gw_buf_puts(out, "\"");
	size_t run = 0; /* bytes copied verbatim, flushed in one append */
	for (size_t i = 0; i < len;) {
		unsigned char c = p[i];
		const char *escape = NULL;
		char hex[8];
		size_t seq = 1;
		if (c == '"') {
			escape = "\\\"";
		} else if (c == '\\') {
			escape = "\\\\";
		} else if (c < 0x20) {
			static const char *const named[0x20] = {
			        ['\b'] = "\\b", ['\f'] = "\\f", ['\n'] = "\\n",
			        ['\r'] = "\\r", ['\t'] = "\\t",
			};
			if (named[c] != NULL) {
				escape = named[c];
			} else {
				snprintf(hex, sizeof(hex), "\\u%04x", c);
				escape = hex;
			}
		} else if (c >= 0x80) {
			seq = utf8_sequence(p + i, len - i);
			if (seq == 0) {
				escape = "\\ufffd";
				seq = 1;
			}
		}
		if (escape != NULL) {
			gw_buf_append(out, p + i - run, run);
			run = 0;
			gw_buf_puts(out, escape);
		} else {
			run += seq;
		}
		i += seq;
	}
	gw_buf_append(out, p + len - run, run);
	gw_buf_puts(out, "\"");
}

static void json_str(struct gw_buf *out, const char *s)
{
	if (s == NULL)
		gw_buf_puts(out, "null");
	else
		gw_json_string(out, s, strlen(s));
}

static void json_key(struct gw_buf *out, const char *key)
{
	gw_json_string(out, key, strlen(key));
	gw_buf_puts(out, ":");
}

static void json_u64(struct gw_buf *out, const char *key, uint64_t value, bool comma)
{
	json_key(out, key);
	gw_buf_printf(out, "%llu%s", (unsigned long long)value, comma ? "," : "");
}

void gw_format_utc_ms(int64_t epoch_ms, char out[32])
{
	time_t seconds = (time_t)(epoch_ms / 1000);
	struct tm utc;
	gmtime_r(&seconds, &utc);
	char base[24];
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &utc);
	snprintf(out, 32, "%s.%03dZ", base, (int)(epoch_ms % 1000));
}

static void json_time(struct gw_buf *out, const char *key, int64_t epoch_ms)
{
	json_key(out, key);
	if (epoch_ms <= 0) {
		gw_buf_puts(out, "null,");
		return;
	}
	char stamp[32];
	gw_format_utc_ms(epoch_ms, stamp);
	gw_buf_printf(out, "\"%s\",", stamp);
}

static void json_counts_fields(struct gw_buf *out, const struct gw_counts *c)
{
	json_u64(out, "found", c->found, true);
	json_u64(out, "migrated", c->migrated, true);
	json_u64(out, "already_present", c->already_present, true);
	json_u64(out, "skipped_too_large", c->skipped_too_large, true);
	json_u64(out, "skipped_over_cap", c->skipped_over_cap, true);
	json_u64(out, "skipped_filtered", c->skipped_filtered, true);
	json_u64(out, "failed", c->failed_messages, true);
	json_u64(out, "bytes", c->bytes, false);
}

/* The size limit too-large messages of @p f exceeded: the smaller of the
 * profile's max_size and the sink's own limit, and who set it. */
static uint64_t size_limit_of(const struct gw_folder_report *f, uint64_t max_size,
                              const char **set_by)
{
	*set_by = "max_size";
	if (f->sink_limit > 0 && (max_size == 0 || f->sink_limit < max_size)) {
		*set_by = f->sink_limit_by;
		return f->sink_limit;
	}
	return max_size;
}

static void json_skip(struct gw_buf *out, const struct gw_report_skip *skip,
                      const struct gw_folder_report *f, uint64_t max_size)
{
	gw_buf_printf(out, "{\"uid\":%u,\"reason\":", skip->uid);
	json_str(out, skip_reason_names[skip->reason]);
	if (skip->reason == GW_SKIP_TOO_LARGE) {
		const char *set_by;
		uint64_t limit = size_limit_of(f, max_size, &set_by);
		gw_buf_printf(out, ",\"size\":%llu,\"limit\":%llu", (unsigned long long)skip->value,
		              (unsigned long long)limit);
		if (f->sink_limit > 0) {
			gw_buf_puts(out, ",\"limit_by\":");
			json_str(out, set_by);
		}
	} else if (skip->reason == GW_SKIP_FILTERED) {
		char stamp[32];
		gw_format_utc_ms((int64_t)skip->value * 1000, stamp);
		gw_buf_printf(out, ",\"internal_date\":\"%s\"", stamp);
	}
	gw_buf_puts(out, "}");
}

static void json_folder(struct gw_buf *out, const struct gw_folder_report *f, uint64_t limit)
{
	gw_buf_puts(out, "{");
	json_key(out, "source");
	json_str(out, f->source_name);
	gw_buf_puts(out, ",");
	json_key(out, "sink_folder");
	json_str(out, f->sink_folder);
	gw_buf_puts(out, ",");
	json_key(out, "error");
	json_str(out, f->error);
	gw_buf_puts(out, ",");
	json_u64(out, "found", f->found, true);
	json_u64(out, "migrated", f->migrated, true);
	json_u64(out, "already_present", f->already_present, true);
	json_u64(out, "rematched", f->rematched, true);
	json_u64(out, "skipped_too_large", f->skipped_too_large, true);
	json_u64(out, "skipped_over_cap", f->skipped_over_cap, true);
	json_u64(out, "skipped_filtered", f->skipped_filtered, true);
	json_u64(out, "failed", f->failed, true);
	json_u64(out, "bytes", f->bytes, true);
	json_key(out, "skipped");
	gw_buf_puts(out, "[");
	for (size_t i = 0; i < f->skip_count; i++) {
		if (i > 0)
			gw_buf_puts(out, ",");
		json_skip(out, &f->skips[i], f, limit);
	}
	gw_buf_puts(out, "],");
	json_key(out, "failures");
	gw_buf_puts(out, "[");
	for (size_t i = 0; i < f->failure_count; i++) {
		gw_buf_printf(out, "%s{\"uid\":%u,\"reason\":", i > 0 ? "," : "",
		              f->failures[i].uid);
		json_str(out, f->failures[i].reason);
		gw_buf_puts(out, "}");
	}
	gw_buf_puts(out, "]}");
}

static void json_collisions(struct gw_buf *out, const struct gw_mailbox_report *m)
{
	json_key(out, "collisions");
	gw_buf_puts(out, "[");
	for (size_t i = 0; i < m->collision_count; i++) {
		const struct gw_collision_report *c = &m->collisions[i];
		gw_buf_puts(out, i > 0 ? ",{" : "{");
		json_key(out, "sink_folder");
		json_str(out, c->sink_folder);
		gw_buf_puts(out, ",");
		json_key(out, "folders");
		gw_buf_puts(out, "[");
		json_str(out, c->first);
		gw_buf_puts(out, ",");
		json_str(out, c->second);
		gw_buf_puts(out, "]}");
	}
	gw_buf_puts(out, "]");
}

void gw_report_mailbox_json(struct gw_buf *out, const struct gw_mailbox_report *m)
{
	struct gw_counts counts = {0};
	gw_counts_add_mailbox(&counts, m);
	gw_buf_puts(out, "{");
	json_key(out, "pipeline");
	json_str(out, m->pipeline);
	gw_buf_puts(out, ",");
	json_key(out, "mailbox");
	json_str(out, m->email);
	gw_buf_puts(out, ",");
	json_key(out, "status");
	json_str(out, gw_mailbox_status_name(m->status));
	gw_buf_puts(out, ",");
	json_key(out, "error");
	json_str(out, m->error);
	gw_buf_puts(out, ",");
	json_time(out, "started", m->started);
	json_time(out, "finished", m->finished);
	int64_t duration =
	        m->started > 0 && m->finished >= m->started ? m->finished - m->started : 0;
	json_u64(out, "duration_ms", (uint64_t)duration, true);
	json_u64(out, "attempts", m->attempts, true);
	json_u64(out, "connections", m->connections, true);
	json_counts_fields(out, &counts);
	gw_buf_puts(out, ",");
	json_key(out, "folders");
	gw_buf_puts(out, "[");
	for (size_t i = 0; i < m->folder_count; i++) {
		if (i > 0)
			gw_buf_puts(out, ",");
		json_folder(out, &m->folders[i], m->max_size);
	}
	gw_buf_puts(out, "],");
	json_collisions(out, m);
	gw_buf_puts(out, ",");
	json_key(out, "warnings");
	gw_buf_puts(out, "[");
	for (size_t i = 0; i < m->warning_count; i++) {
		if (i > 0)
			gw_buf_puts(out, ",");
		json_str(out, m->warnings[i]);
	}
	gw_buf_puts(out, "]}");
}

/* ---- CSV ---- */

void gw_csv_field(struct gw_buf *out, const char *s)
{
	if (s == NULL)
		return;
	if (strpbrk(s, ",\"\r\n") == NULL) {
		gw_buf_puts(out, s);
		return;
	}
	gw_buf_puts(out, "\"");
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '"')
			gw_buf_puts(out, "\"\"");
		else
			gw_buf_append(out, p, 1);
	}
	gw_buf_puts(out, "\"");
}

void gw_report_csv_header(struct gw_buf *out)
{
	gw_buf_puts(out,
	            "pipeline,mailbox,status,folder,sink_folder,found,migrated,already_present,"
	            "skipped_too_large,skipped_over_cap,skipped_filtered,failed,bytes,error\r\n");
}

static void csv_row(struct gw_buf *out, const struct gw_mailbox_report *m,
                    const struct gw_folder_report *f)
{
	static const struct gw_folder_report none = {0};
	const struct gw_folder_report *c = f != NULL ? f : &none;
	gw_csv_field(out, m->pipeline);
	gw_buf_puts(out, ",");
	gw_csv_field(out, m->email);
	gw_buf_printf(out, ",%s,", gw_mailbox_status_name(m->status));
	gw_csv_field(out, c->source_name);
	gw_buf_puts(out, ",");
	gw_csv_field(out, c->sink_folder);
	gw_buf_printf(
	        out, ",%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,", (unsigned long long)c->found,
	        (unsigned long long)c->migrated, (unsigned long long)c->already_present,
	        (unsigned long long)c->skipped_too_large, (unsigned long long)c->skipped_over_cap,
	        (unsigned long long)c->skipped_filtered, (unsigned long long)c->failed,
	        (unsigned long long)c->bytes);
	gw_csv_field(out, c->error != NULL ? c->error : m->error);
	gw_buf_puts(out, "\r\n");
}

void gw_report_mailbox_csv(struct gw_buf *out, const struct gw_mailbox_report *m)
{
	if (m->folder_count == 0) {
		csv_row(out, m, NULL);
		return;
	}
	for (size_t i = 0; i < m->folder_count; i++)
		csv_row(out, m, &m->folders[i]);
}

/* ---- the run report files ---- */

struct pipeline_counts {
	char *name;
	struct gw_counts counts;
};

struct gw_run_report {
	pthread_mutex_t lock;
	char *json_path, *csv_path; /* final names */
	char *json_tmp, *csv_tmp;
	FILE *json, *csv;
	bool write_failed;
	size_t mailboxes_written;
	int64_t started_ms;
	struct gw_counts totals;
	struct pipeline_counts *pipelines;
	size_t pipeline_count;
};

/* mkdir -p */
static bool make_dirs(const char *dir, char **error)
{
	char *path = gw_xstrdup(dir);
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			*error = gw_xasprintf("cannot create report directory %s: %s", path,
			                      strerror(errno));
			free(path);
			return false;
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
	free(path);
	return true;
}

static bool path_taken(const char *base, const char *ext)
{
	char *final = gw_xasprintf("%s.%s", base, ext);
	char *tmp = gw_xasprintf("%s.%s.tmp", base, ext);
	bool taken = access(final, F_OK) == 0 || access(tmp, F_OK) == 0;
	free(final);
	free(tmp);
	return taken;
}

/* report-20240301T120000Z, with -2, -3 ... if a run in the same second left one. */
static char *unique_base(const char *dir, int64_t started_ms)
{
	time_t seconds = (time_t)(started_ms / 1000);
	struct tm utc;
	gmtime_r(&seconds, &utc);
	char stamp[32];
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &utc);
	for (unsigned n = 1;; n++) {
		char *base = n == 1 ? gw_xasprintf("%s/report-%s", dir, stamp)
		                    : gw_xasprintf("%s/report-%s-%u", dir, stamp, n);
		if (!path_taken(base, "json") && !path_taken(base, "csv"))
			return base;
		free(base);
	}
}

struct gw_run_report *gw_run_report_open(const char *dir, int64_t started_ms, bool dry_run,
                                         char **error)
{
	if (!make_dirs(dir, error))
		return NULL;
	struct gw_run_report *r = gw_xcalloc(1, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->started_ms = started_ms;
	char *base = unique_base(dir, started_ms);
	r->json_path = gw_xasprintf("%s.json", base);
	r->csv_path = gw_xasprintf("%s.csv", base);
	r->json_tmp = gw_xasprintf("%s.json.tmp", base);
	r->csv_tmp = gw_xasprintf("%s.csv.tmp", base);
	free(base);
	r->json = fopen(r->json_tmp, "w");
	r->csv = r->json != NULL ? fopen(r->csv_tmp, "w") : NULL;
	if (r->json == NULL || r->csv == NULL) {
		*error = gw_xasprintf("cannot write report %s: %s",
		                      r->json == NULL ? r->json_tmp : r->csv_tmp, strerror(errno));
		if (r->json != NULL) {
			fclose(r->json);
			unlink(r->json_tmp);
		}
		r->json = NULL;
		gw_run_report_free(r);
		return NULL;
	}
	char stamp[32];
	gw_format_utc_ms(started_ms, stamp);
	fprintf(r->json,
	        "{\"report_version\":1,\"godwit_version\":\"%s\",\"dry_run\":%s,"
	        "\"started\":\"%s\",\n\"mailboxes\":[\n",
	        GODWIT_VERSION, dry_run ? "true" : "false", stamp);
	struct gw_buf header = {0};
	gw_report_csv_header(&header);
	fputs(header.data, r->csv);
	gw_buf_free(&header);
	fflush(r->json);
	fflush(r->csv);
	return r;
}

static struct gw_counts *pipeline_counts(struct gw_run_report *r, const char *name)
{
	for (size_t i = 0; i < r->pipeline_count; i++) {
		if (strcmp(r->pipelines[i].name, name) == 0)
			return &r->pipelines[i].counts;
	}
	r->pipelines = gw_xrealloc(r->pipelines, (r->pipeline_count + 1) * sizeof(*r->pipelines));
	struct pipeline_counts *p = &r->pipelines[r->pipeline_count++];
	memset(p, 0, sizeof(*p));
	p->name = gw_xstrdup(name);
	return &p->counts;
}

void gw_run_report_add(struct gw_run_report *r, const struct gw_mailbox_report *mailbox)
{
	struct gw_buf json = {0}, csv = {0};
	gw_report_mailbox_json(&json, mailbox);
	gw_report_mailbox_csv(&csv, mailbox);
	pthread_mutex_lock(&r->lock);
	if (r->mailboxes_written++ > 0)
		fputs(",\n", r->json);
	if (fwrite(json.data, 1, json.len, r->json) != json.len ||
	    fwrite(csv.data, 1, csv.len, r->csv) != csv.len)
		r->write_failed = true;
	/* Flushed per mailbox: a run stopped hard still leaves what finished on disk. */
	fflush(r->json);
	fflush(r->csv);
	gw_counts_add_mailbox(&r->totals, mailbox);
	gw_counts_add_mailbox(pipeline_counts(r, mailbox->pipeline), mailbox);
	pthread_mutex_unlock(&r->lock);
	gw_buf_free(&json);
	gw_buf_free(&csv);
}

static void json_counts_object(struct gw_buf *out, const struct gw_counts *c)
{
	gw_buf_puts(out, "{");
	json_u64(out, "mailboxes", c->mailboxes, true);
	json_u64(out, "completed", c->completed, true);
	json_u64(out, "partial", c->partial, true);
	json_u64(out, "failed_mailboxes", c->failed, true);
	json_u64(out, "interrupted", c->interrupted, true);
	json_counts_fields(out, c);
	gw_buf_puts(out, "}");
}

static void json_tail(struct gw_run_report *r, struct gw_buf *out, int64_t finished_ms,
                      const char *const *pipelines, size_t pipeline_count,
                      const struct gw_budget_report *budgets, size_t budget_count)
{
	gw_buf_puts(out, "\n],\n\"pipelines\":[");
	for (size_t i = 0; i < pipeline_count; i++) {
		gw_buf_puts(out, i > 0 ? ",{" : "{");
		json_key(out, "name");
		json_str(out, pipelines[i]);
		gw_buf_puts(out, ",");
		json_key(out, "totals");
		json_counts_object(out, pipeline_counts(r, pipelines[i]));
		gw_buf_puts(out, "}");
	}
	gw_buf_puts(out, "],\n\"connections\":[");
	for (size_t i = 0; i < budget_count; i++) {
		gw_buf_puts(out, i > 0 ? ",{" : "{");
		json_key(out, "budget");
		json_str(out, budgets[i].key);
		gw_buf_printf(out, ",\"limit\":%u,\"peak\":%u}", budgets[i].limit, budgets[i].peak);
	}
	gw_buf_puts(out, "],\n");
	json_key(out, "totals");
	json_counts_object(out, &r->totals);
	gw_buf_puts(out, ",\n");
	json_time(out, "finished", finished_ms);
	int64_t duration = finished_ms >= r->started_ms ? finished_ms - r->started_ms : 0;
	json_u64(out, "duration_ms", (uint64_t)duration, false);
	gw_buf_puts(out, "}\n");
}

static bool finish_file(FILE *f, const char *tmp, const char *final, char **error)
{
	bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
	ok = fclose(f) == 0 && ok;
	if (ok && rename(tmp, final) == 0)
		return true;
	if (*error == NULL)
		*error = gw_xasprintf("cannot write report %s: %s", final, strerror(errno));
	return false;
}

bool gw_run_report_close(struct gw_run_report *r, int64_t finished_ms, const char *const *pipelines,
                         size_t pipeline_count, const struct gw_budget_report *budgets,
                         size_t budget_count, char **error)
{
	struct gw_buf tail = {0};
	*error = NULL;
	pthread_mutex_lock(&r->lock);
	json_tail(r, &tail, finished_ms, pipelines, pipeline_count, budgets, budget_count);
	if (fwrite(tail.data, 1, tail.len, r->json) != tail.len)
		r->write_failed = true;
	gw_buf_free(&tail);
	if (r->write_failed)
		*error = gw_xasprintf("cannot write report %s: write error", r->json_path);
	bool ok = finish_file(r->json, r->json_tmp, r->json_path, error);
	ok = finish_file(r->csv, r->csv_tmp, r->csv_path, error) && ok;
	r->json = r->csv = NULL;
	pthread_mutex_unlock(&r->lock);
	return ok && !r->write_failed;
}

const char *gw_run_report_json_path(const struct gw_run_report *r)
{
	return r->json_path;
}

const char *gw_run_report_csv_path(const struct gw_run_report *r)
{
	return r->csv_path;
}

const struct gw_counts *gw_run_report_totals(const struct gw_run_report *r)
{
	return &r->totals;
}

void gw_run_report_free(struct gw_run_report *r)
{
	if (r == NULL)
		return;
	if (r->json != NULL)
		fclose(r->json);
	if (r->csv != NULL)
		fclose(r->csv);
	for (size_t i = 0; i < r->pipeline_count; i++)
		free(r->pipelines[i].name);
	free(r->pipelines);
	free(r->json_path);
	free(r->csv_path);
	free(r->json_tmp);
	free(r->csv_tmp);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* ---- console ---- */

void gw_report_print_summary(FILE *out, const struct gw_counts *t, int64_t duration_ms,
                             const char *json_path, const char *csv_path)
{
	double seconds = (double)duration_ms / 1000.0;
	double mb = (double)t->bytes / 1e6;
	double rate = seconds > 0 ? (double)t->migrated / seconds : 0;
	double mb_rate = seconds > 0 ? mb / seconds : 0;
	uint64_t skipped = t->skipped_too_large + t->skipped_over_cap + t->skipped_filtered;
	fprintf(out, "\nrun finished in %.1f s\n", seconds);
	fprintf(out,
	        "  mailboxes: %llu completed, %llu partial, %llu failed, %llu interrupted "
	        "(of %llu)\n",
	        (unsigned long long)t->completed, (unsigned long long)t->partial,
	        (unsigned long long)t->failed, (unsigned long long)t->interrupted,
	        (unsigned long long)t->mailboxes);
	fprintf(out, "  messages:  %llu migrated, %llu already present, %llu failed\n",
	        (unsigned long long)t->migrated, (unsigned long long)t->already_present,
	        (unsigned long long)t->failed_messages);
	fprintf(out, "  skipped:   %llu (%llu too large, %llu over cap, %llu filtered)\n",
	        (unsigned long long)skipped, (unsigned long long)t->skipped_too_large,
	        (unsigned long long)t->skipped_over_cap, (unsigned long long)t->skipped_filtered);
	fprintf(out, "  data:      %.1f MB, %.1f msgs/s, %.2f MB/s\n", mb, rate, mb_rate);
	if (json_path != NULL)
		fprintf(out, "  report:    %s\n             %s\n", json_path, csv_path);
	fflush(out);
}
