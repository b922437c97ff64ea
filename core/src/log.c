/* Logging, secret redaction, error recording, cancellation and the host table.
 * Every line is formatted completely in memory, redacted, then written with a
 * single fwrite under one mutex, so lines from worker threads never interleave
 * and no secret can slip out through a partial write. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <godwit/plugin.h>
#include <godwit/types.h>

#include "imap_client.h"
#include "secret.h"
#include "util.h"

/* Shorter secrets would mask ordinary words and digits all over the log. */
#define GW_SECRET_MIN_LEN 4

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

static atomic_int log_level = GW_LOG_INFO;
/* Only stored from signal handlers and read by workers: a lock-free atomic is
 * async-signal-safe, a mutex would not be. */
static atomic_int cancel_level = 0;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "signal handlers need a lock-free atomic int");

static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;   /* the stream and its writes */
static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER; /* the secret list */
static FILE *log_stream;                                         /* NULL means stderr */

void gw_log_set_level(enum gw_log_level level)
{
	atomic_store(&log_level, (int)level);
}

enum gw_log_level gw_log_get_level(void)
{
	return (enum gw_log_level)atomic_load(&log_level);
}

void gw_log_set_stream(FILE *stream)
{
	pthread_mutex_lock(&write_lock);
	log_stream = stream;
	pthread_mutex_unlock(&write_lock);
}

bool gw_log_parse_level(const char *name, enum gw_log_level *level)
{
	if (name == NULL)
		return false;
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*level = (enum gw_log_level)i;
			return true;
		}
	}
	if (strcasecmp(name, "warning") == 0) {
		*level = GW_LOG_WARN;
		return true;
	}
	return false;
}

/* Secrets are chained in buckets keyed by their first GW_SECRET_MIN_LEN bytes:
 * a run with tens of thousands of mailbox passwords must neither register them
 * in quadratic time nor compare every secret at every byte of every line. */
struct secret {
	char *text;
	size_t len;
	struct secret *next;
};

static struct secret **secret_buckets;
static size_t bucket_count; /* power of two, or 0 */
static size_t secret_count;

static size_t prefix_bucket(const char *text, size_t buckets)
{
	uint32_t h = 2166136261u; /* FNV-1a over the fixed-length prefix */
	for (size_t i = 0; i < GW_SECRET_MIN_LEN; i++)
		h = (h ^ (unsigned char)text[i]) * 16777619u;
	return h & (buckets - 1);
}

static void rehash_secrets(void)
{
	size_t buckets = bucket_count ? bucket_count * 2 : 64;
	struct secret **table = gw_xcalloc(buckets, sizeof(*table));
	for (size_t b = 0; b < bucket_count; b++) {
		for (struct secret *s = secret_buckets[b], *next; s != NULL; s = next) {
			next = s->next;
			size_t to = prefix_bucket(s->text, buckets);
			s->next = table[to];
			table[to] = s;
		}
	}
	free(secret_buckets);
	secret_buckets = table;
	bucket_count = buckets;
}

static bool secret_known(const char *secret)
{
	if (bucket_count == 0)
		return false;
	for (struct secret *s = secret_buckets[prefix_bucket(secret, bucket_count)]; s != NULL;
	     s = s->next) {
		if (strcmp(s->text, secret) == 0)
			return true;
	}
	return false;
}

void gw_log_register_secret(const char *secret)
{
	if (secret == NULL || strlen(secret) < GW_SECRET_MIN_LEN)
		return;
	pthread_mutex_lock(&secrets_lock);
	if (!secret_known(secret)) {
		if (secret_count >= bucket_count)
			rehash_secrets();
		struct secret *s = gw_xmalloc(sizeof(*s));
		s->text = gw_xstrdup(secret);
		s->len = strlen(secret);
		size_t b = prefix_bucket(secret, bucket_count);
		s->next = secret_buckets[b];
		secret_buckets[b] = s;
		secret_count++;
	}
	pthread_mutex_unlock(&secrets_lock);
}

void gw_log_clear_secrets(void)
{
	pthread_mutex_lock(&secrets_lock);
	for (size_t b = 0; b < bucket_count; b++) {
		for (struct secret *s = secret_buckets[b], *next; s != NULL; s = next) {
			next = s->next;
			explicit_bzero(s->text, s->len);
			free(s->text);
			free(s);
		}
	}
	free(secret_buckets);
	secret_buckets = NULL;
	bucket_count = 0;
	secret_count = 0;
	pthread_mutex_unlock(&secrets_lock);
}

/* Length of the longest registered secret that starts at @p at (which has
 * @p left bytes), or 0. Longest, so a secret containing another is masked whole. */
static size_t secret_at(const char *at, size_t left)
{
	if (left < GW_SECRET_MIN_LEN)
		return 0;
	size_t best = 0;
	for (struct secret *s = secret_buckets[prefix_bucket(at, bucket_count)]; s != NULL;
	     s = s->next) {
		if (s->len > best && s->len <= left && memcmp(at, s->text, s->len) == 0)
			best = s->len;
	}
	return best;
}

char *gw_log_redact(const char *text)
{
	struct gw_buf out = {0};
	size_t len = strlen(text);
	gw_buf_append(&out, "", 0);
	pthread_mutex_lock(&secrets_lock);
	size_t copied = 0; /* text[copied..i) is pending plain text */
	for (size_t i = 0; i < len;) {
		size_t hit = secret_count > 0 ? secret_at(text + i, len - i) : 0;
		if (hit == 0) {
			i++;
			continue;
		}
		gw_buf_append(&out, text + copied, i - copied);
		gw_buf_puts(&out, "***");
		i += hit;
		copied = i;
	}
	pthread_mutex_unlock(&secrets_lock);
	gw_buf_append(&out, text + copied, len - copied);
	return out.data;
}

static void append_timestamp(struct gw_buf *line)
{
	time_t now = time(NULL);
	struct tm utc;
	char stamp[32];
	gmtime_r(&now, &utc);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &utc);
	gw_buf_puts(line, stamp);
}

/* "[pipeline] mailbox folder: " with every unknown part left out. */
/* Appends @p text with control characters written as \xNN. Folder names,
 * mailbox names and server texts come from outside: a CR, LF or ESC in them
 * must not forge a second log line or drive the terminal. */
static void append_printable(struct gw_buf *line, const char *text)
{
	const char *run = text;
	for (const char *p = text; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 0x20 && c != 0x7f)
			continue;
		gw_buf_append(line, run, (size_t)(p - run));
		gw_buf_printf(line, "\\x%02x", c);
		run = p + 1;
	}
	gw_buf_puts(line, run);
}

static void append_context(struct gw_buf *line, const struct gw_ctx *ctx)
{
	if (ctx == NULL)
		return;
	bool any = false;
	if (ctx->pipeline != NULL) {
		gw_buf_puts(line, " [");
		append_printable(line, ctx->pipeline);
		gw_buf_puts(line, "]");
		any = true;
	}
	if (ctx->mailbox != NULL) {
		gw_buf_puts(line, " ");
		append_printable(line, ctx->mailbox);
		any = true;
	}
	if (ctx->folder != NULL) {
		gw_buf_puts(line, " ");
		append_printable(line, ctx->folder);
		any = true;
	}
	if (any)
		gw_buf_puts(line, ":");
}

static void write_line(const char *line, size_t len)
{
	pthread_mutex_lock(&write_lock);
	FILE *stream = log_stream != NULL ? log_stream : stderr;
	fwrite(line, 1, len, stream);
	fflush(stream);
	pthread_mutex_unlock(&write_lock);
}

void gw_vlog(struct gw_ctx *ctx, enum gw_log_level level, const char *fmt, va_list ap)
{
	if ((int)level > atomic_load(&log_level) || (int)level < 0)
		return;
	struct gw_buf line = {0};
	append_timestamp(&line);
	gw_buf_printf(&line, " %s", level_names[level]);
	append_context(&line, ctx);
	gw_buf_puts(&line, " ");
	char *text = gw_xvasprintf(fmt, ap);
	append_printable(&line, text);
	free(text);
	gw_buf_puts(&line, "\n");
	char *safe = gw_log_redact(line.data);
	write_line(safe, strlen(safe));
	free(safe);
	gw_buf_free(&line);
}

void gw_log(struct gw_ctx *ctx, enum gw_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	gw_vlog(ctx, level, fmt, ap);
	va_end(ap);
}

static GW_PRINTF(3, 0) void record_failure(struct gw_ctx *ctx, gw_status status, const char *fmt,
                                           va_list ap)
{
	char *text = gw_xvasprintf(fmt, ap);
	char *safe = gw_log_redact(text);
	free(text);
	if (ctx != NULL) {
		ctx->status = status;
		snprintf(ctx->error, sizeof(ctx->error), "%s", safe);
	}
	gw_log(ctx, GW_LOG_DEBUG, "%s error: %s", gw_status_name(status), safe);
	free(safe);
}

gw_status gw_fail(struct gw_ctx *ctx, gw_status status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	record_failure(ctx, status, fmt, ap);
	va_end(ap);
	return status;
}

void gw_cancel_request(int level)
{
	/* Only ever raise: a late graceful request must not undo "stop now". */
	int current = atomic_load(&cancel_level);
	while (level > current && !atomic_compare_exchange_weak(&cancel_level, &current, level)) {
	}
}

int gw_cancel_level(void)
{
	return atomic_load(&cancel_level);
}

/* ---- the host table ---- */

static void host_set_retry_after(struct gw_ctx *ctx, uint32_t milliseconds)
{
	if (ctx != NULL)
		ctx->retry_after_ms = milliseconds;
}

static bool host_cancelled(struct gw_ctx *ctx)
{
	(void)ctx;
	return gw_cancel_level() >= 1;
}

static gw_status host_resolve_secret(struct gw_ctx *ctx, const char *reference, char **out)
{
	char *error = NULL;
	*out = NULL;
	if (reference == NULL)
		return gw_fail(ctx, GW_ERR_CONFIG, "no secret reference given");
	if (!gw_secret_resolve(reference, out, &error)) {
		gw_status status = gw_fail(ctx, GW_ERR_CONFIG, "%s",
		                           error != NULL ? error : "secret could not be resolved");
		free(error);
		return status;
	}
	return GW_OK;
}

static void host_free(void *ptr)
{
	free(ptr);
}

static const char *host_mailbox_field(const struct gw_mailbox *mailbox, const char *column)
{
	if (mailbox == NULL || column == NULL)
		return NULL;
	if (mailbox->struct_size <
	    offsetof(struct gw_mailbox, extra_values) + sizeof(mailbox->extra_values))
		return NULL;
	for (size_t i = 0; i < mailbox->extra_count; i++) {
		if (strcasecmp(mailbox->extra_names[i], column) == 0)
			return mailbox->extra_values[i];
	}
	return NULL;
}

/* Not const-initialised throughout: the IMAP table's address comes from a
 * function of another module, so it is filled in once, on first use. */
static struct gw_host host_table = {
        .struct_size = sizeof(struct gw_host),
        .abi_major = GW_ABI_MAJOR,
        .abi_minor = GW_ABI_MINOR,
        .log = gw_log,
        .fail = gw_fail,
        .set_retry_after = host_set_retry_after,
        .cancelled = host_cancelled,
        .resolve_secret = host_resolve_secret,
        .free = host_free,
        .mailbox_field = host_mailbox_field,
};
static pthread_once_t host_table_once = PTHREAD_ONCE_INIT;

static void host_table_init(void)
{
	host_table.imap = gw_imap_client_api();
}

const struct gw_host *gw_host_table(void)
{
	pthread_once(&host_table_once, host_table_init);
	return &host_table;
}
