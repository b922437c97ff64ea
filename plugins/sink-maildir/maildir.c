/* The maildir sink: writes each mailbox into a Maildir++ (or fs-layout)
 * tree, byte for byte, with flags, keywords and the internal date as mtime.
 * README.md documents the layout, file names, folder-name escaping and why
 * the durability protocol is safe: append writes tmp/<unique> (no fsync per
 * message); flush syncs the file system once, renames the batch into cur/ and
 * fsyncs the directories it touched; the core commits its state after that.
 * A message therefore appears in cur/ only with its bytes on disk, and
 * lookup() finds by origin key whatever reached cur/ before a crash. */
#define _GNU_SOURCE /* syncfs */
#include "maildir.h"
#include "maildir_writeback.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define ORIGIN_KEY_MAX 32
/* With fsync on, the file system is synced in the background after this much
 * was written (maildir_writeback.h): 5,000 messages / 230 MB over plain IMAP
 * with fsync went from 1.18 to 0.82 s on ext4 (medians of 3; without fsync
 * 0.66 s). 8 MiB measured the same. */
#define WRITEBACK_EVERY (32u * 1024 * 1024)
#define OVERFLOW_FILE   "godwit-keywords-overflow"

struct md_plugin {
	const struct gw_host *host;
	const struct md_config *cfg;
	char hostname[72];
};

/* A list of strings; used for paths to fsync and keywords already warned about. */
struct md_list {
	char **items;
	size_t count;
	size_t cap;
};

struct md_folder {
	char *id;  /* folder_id handed to the core */
	char *dir; /* the folder's maildir (root for INBOX) */
	struct md_keywords keywords;
	char *keywords_tmp; /* the grown keyword table, staged by flush until renamed */
	bool keys_loaded;
	struct md_keyset keys; /* origin keys in cur/ and new/ */
	struct md_list warned; /* keywords that could not get a letter */
};

/* A message in tmp/ waiting for flush to move it into cur/. */
struct md_delivery {
	struct md_folder *folder;
	char *tmp;
	char *final;
	char *origin_key; /* may be NULL */
	char *base;       /* the message id */
};

/* A batch on its way into cur/: what a flush took from the session. flush_begin
 * hands it to a thread of its own while the core appends the next batch into
 * the session (flush runs it on the caller's). The thread touches nothing of
 * the session but root_fd and the folders' dir and keywords_tmp, which nothing
 * else changes until flush_wait: the session appends into new deliveries and
 * lists, and stages keyword tables only at flush_begin, after the wait. */
struct md_flight {
	pthread_t thread;
	bool threaded; /* thread is running or waits to be joined */
	bool durable;
	int root_fd;
	const char *root;
	struct md_delivery *deliveries;
	size_t delivery_count;
	size_t moved;              /* deliveries[0..moved) reached cur/ */
	struct md_folder **staged; /* folders whose keyword table is staged (keywords_tmp) */
	size_t staged_count;
	struct md_list written;    /* other files written (keyword overflow) */
	struct md_list dirty_dirs; /* directories whose entries changed */
	gw_status status;
	char *error;
};

struct md_session {
	struct md_plugin *plugin;
	struct gw_ctx *ctx;
	char *root;
	int root_fd;
	struct md_folder **folders;
	size_t folder_count;
	struct md_list dirty_dirs; /* directories whose entries changed since the last flush */
	struct md_list written;    /* other files written since the last flush (keyword overflow) */
	struct md_delivery *deliveries; /* written to tmp/, renamed into cur/ by flush */
	size_t delivery_count;
	size_t delivery_cap;
	struct md_keyset delivery_keys; /* their origin keys: the list is searched only on a hit */
	struct md_writeback *writeback; /* with fsync on; NULL if off or it could not start */
	struct md_flight flight;        /* the batch being flushed, if flying */
	bool flying;
};

/* ---- small helpers ------------------------------------------------------------ */

static bool list_has(const struct md_list *l, const char *s)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->items[i], s) == 0)
			return true;
	return false;
}

static void list_add(struct md_list *l, const char *s)
{
	if (l->count == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->items = md_xrealloc(l->items, l->cap * sizeof(*l->items));
	}
	l->items[l->count++] = md_xstrdup(s);
}

static void list_add_unique(struct md_list *l, const char *s)
{
	if (!list_has(l, s))
		list_add(l, s);
}

static void list_clear(struct md_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->items[i]);
	l->count = 0;
}

static void list_free(struct md_list *l)
{
	list_clear(l);
	free(l->items);
	memset(l, 0, sizeof(*l));
}

/* Status for a failed file-system call: a full or broken disk stops the
 * mailbox; anything else (permissions, names) concerns the folder. */
static gw_status io_status(int err)
{
	return err == ENOSPC || err == EDQUOT || err == EIO || err == EROFS ? GW_ERR_MAILBOX
	                                                                    : GW_ERR_FOLDER;
}

static gw_status session_fail(struct md_session *s, gw_status status, char *message)
{
	gw_status rc = s->plugin->host->fail(s->ctx, status, "%s", message);
	free(message);
	return rc;
}

/* Remember in @p dirty that @p path changed its parent directory's entries. */
static void mark_parent_dirty(struct md_list *dirty, const char *path)
{
	const char *slash = strrchr(path, '/');
	char *parent = slash ? md_xasprintf("%.*s", (int)(slash == path ? 1 : slash - path), path)
	                     : md_xstrdup(".");
	list_add_unique(dirty, parent);
	free(parent);
}

static bool session_mkdir(struct md_session *s, const char *path, char **error)
{
	bool created;
	if (!md_mkdir(path, &created, error))
		return false;
	if (created)
		mark_parent_dirty(&s->dirty_dirs, path);
	return true;
}

/* mkdir -p of the mailbox root. */
static bool session_mkdir_parents(struct md_session *s, const char *path, char **error)
{
	char *copy = md_xstrdup(path);
	bool ok = true;
	for (char *p = copy + 1; ok && *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		ok = session_mkdir(s, copy, error);
		*p = '/';
	}
	ok = ok && session_mkdir(s, copy, error);
	free(copy);
	return ok;
}

static bool make_maildir(struct md_session *s, const char *dir, char **error)
{
	static const char *const subdirs[] = {"cur", "new", "tmp"};
	for (size_t i = 0; i < 3; i++) {
		char *sub = md_xasprintf("%s/%s", dir, subdirs[i]);
		bool ok = session_mkdir(s, sub, error);
		free(sub);
		if (!ok)
			return false;
	}
	return true;
}

/* ---- plugin ------------------------------------------------------------------- */

static gw_status md_init(const struct gw_host *host, struct gw_ctx *ctx, const void *config,
                         void **state)
{
	const struct md_config *cfg = config;
	char *error = NULL;

	if (!GW_HOST_HAS(host, fail) || !GW_HOST_HAS(host, log))
		return GW_ERR_CONFIG;
	if (!cfg->path || !*cfg->path)
		return host->fail(ctx, GW_ERR_CONFIG, "path: must not be empty");
	if (!md_check_template(cfg->path, &error)) {
		gw_status rc = host->fail(ctx, GW_ERR_CONFIG, "%s", error);
		free(error);
		return rc;
	}
	if (cfg->layout != MD_LAYOUT_MAILDIRPP && cfg->layout != MD_LAYOUT_FS)
		return host->fail(ctx, GW_ERR_CONFIG, "layout: unknown value %d", cfg->layout);
	struct md_plugin *plugin = md_xcalloc(1, sizeof(*plugin));
	plugin->host = host;
	plugin->cfg = cfg;
	md_hostname(plugin->hostname, sizeof(plugin->hostname));
	*state = plugin;
	return GW_OK;
}

static void md_fini(void *state)
{
	free(state);
}

static void delivery_free(struct md_delivery *d)
{
	free(d->tmp);
	free(d->final);
	free(d->origin_key);
	free(d->base);
}

static gw_status flight_land(struct md_session *s, bool report);

/* Deliveries never flushed: their tmp/ files go (never reported durable). */
static void deliveries_drop(struct md_session *s)
{
	for (size_t i = 0; i < s->delivery_count; i++) {
		unlink(s->deliveries[i].tmp);
		delivery_free(&s->deliveries[i]);
	}
	s->delivery_count = 0;
	md_keyset_clear(&s->delivery_keys);
}

static void session_free(struct md_session *s)
{
	flight_land(s, false);           /* a core that did not wait for its flush_begin */
	md_writeback_stop(s->writeback); /* before root_fd closes: the thread syncs it */
	deliveries_drop(s);
	free(s->deliveries);
	md_keyset_free(&s->delivery_keys);
	for (size_t i = 0; i < s->folder_count; i++) {
		struct md_folder *f = s->folders[i];
		free(f->id);
		free(f->dir);
		md_keywords_free(&f->keywords);
		md_keyset_free(&f->keys);
		list_free(&f->warned);
		free(f);
	}
	free(s->folders);
	list_free(&s->dirty_dirs);
	list_free(&s->written);
	if (s->root_fd >= 0)
		close(s->root_fd);
	free(s->root);
	free(s);
}

static gw_status md_open(void *state, struct gw_ctx *ctx, const struct gw_mailbox *mailbox,
                         void **session)
{
	struct md_plugin *plugin = state;
	struct md_session *s = md_xcalloc(1, sizeof(*s));
	char *error = NULL;

	s->plugin = plugin;
	s->ctx = ctx;
	s->root_fd = -1;
	s->root = md_expand_path(plugin->cfg->path, mailbox, &error);
	if (!s->root) {
		gw_status rc = session_fail(s, GW_ERR_CONFIG, error);
		session_free(s);
		return rc;
	}
	if (!session_mkdir_parents(s, s->root, &error) || !make_maildir(s, s->root, &error)) {
		gw_status rc = session_fail(s, GW_ERR_MAILBOX, error);
		session_free(s);
		return rc;
	}
	s->root_fd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->root_fd < 0) {
		gw_status rc =
		        session_fail(s, GW_ERR_MAILBOX,
		                     md_xasprintf("cannot open %s: %s", s->root, strerror(errno)));
		session_free(s);
		return rc;
	}
	if (plugin->cfg->fsync)
		s->writeback = md_writeback_start(s->root_fd, WRITEBACK_EVERY);
	*session = s;
	return GW_OK;
}

static void md_close(void *session)
{
	if (session)
		session_free(session);
}

/* ---- folders -------------------------------------------------------------------- */

static void warn_cut(struct md_session *s, const char *what, const char *name)
{
	s->plugin->host->log(s->ctx, GW_LOG_WARN,
	                     "%s is too long for the file system; stored as \"%s\" (the end of "
	                     "the name is replaced by a hash and cannot be decoded)",
	                     what, name);
}

/* Escaped, length-limited components, each checked to stay inside its parent. */
static gw_status escape_components(struct md_session *s, const struct gw_folder_path *path,
                                   char **escaped)
{
	bool fs = s->plugin->cfg->layout == MD_LAYOUT_FS;
	for (size_t i = 0; i < path->count; i++) {
		escaped[i] = md_escape_component(path->components[i], fs);
		if (md_fit_name(&escaped[i], MD_COMPONENT_MAX))
			warn_cut(s, "a folder name component", escaped[i]);
		if (!md_component_is_safe(escaped[i], strlen(escaped[i])))
			return session_fail(
			        s, GW_ERR_FOLDER,
			        md_xasprintf("refusing folder component \"%s\"", escaped[i]));
	}
	return GW_OK;
}

static char *join(char *const *parts, size_t count, const char *prefix, char separator)
{
	struct md_str out = {0};
	md_str_adds(&out, prefix);
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			md_str_addc(&out, separator);
		md_str_adds(&out, parts[i]);
	}
	return md_str_take(&out);
}

/* Relative directory of a folder under the root, and its id ("" / "INBOX" for INBOX). */
static gw_status folder_names(struct md_session *s, const struct gw_folder_path *path, char **rel,
                              char **id)
{
	if (md_is_inbox(path)) {
		*rel = md_xstrdup("");
		*id = md_xstrdup("INBOX");
		return GW_OK;
	}
	char **escaped = md_xcalloc(path->count, sizeof(char *));
	gw_status rc = escape_components(s, path, escaped);
	if (rc == GW_OK && s->plugin->cfg->layout == MD_LAYOUT_MAILDIRPP) {
		*rel = join(escaped, path->count, ".", '.');
		if (md_fit_name(rel, MD_NAME_MAX))
			warn_cut(s, "a Maildir++ folder name", *rel);
		if (!md_component_is_safe(*rel, strlen(*rel))) {
			rc = session_fail(s, GW_ERR_FOLDER,
			                  md_xasprintf("refusing folder directory \"%s\"", *rel));
			free(*rel);
		} else {
			*id = md_xstrdup(*rel);
		}
	} else if (rc == GW_OK) {
		*rel = join(escaped, path->count, "", '/');
		*id = md_xstrdup(*rel);
		md_fit_name(id, GW_SINK_ID_MAX - 1);
	}
	for (size_t i = 0; i < path->count; i++)
		free(escaped[i]);
	free(escaped);
	return rc;
}

static gw_status check_path(struct md_session *s, const struct gw_folder_path *path)
{
	if (!path || path->count == 0 || !path->components)
		return session_fail(s, GW_ERR_FOLDER, md_xstrdup("folder path without components"));
	for (size_t i = 0; i < path->count; i++)
		if (!path->components[i] || !path->components[i][0])
			return session_fail(
			        s, GW_ERR_FOLDER,
			        md_xasprintf("folder path component %zu of %zu is empty", i + 1,
			                     path->count));
	return GW_OK;
}

/* By directory, not id: in the fs layout a shortened id may stand for two directories. */
static struct md_folder *find_folder(struct md_session *s, const char *dir)
{
	for (size_t i = 0; i < s->folder_count; i++)
		if (strcmp(s->folders[i]->dir, dir) == 0)
			return s->folders[i];
	return NULL;
}

/* Create the folder's directories: intermediate levels (fs layout), the
 * maildir itself, and the Maildir++ "maildirfolder" marker. */
static bool create_folder_dirs(struct md_session *s, const char *rel, const char *dir, char **error)
{
	if (!*rel)
		return true; /* INBOX: the root, made at open */
	if (s->plugin->cfg->layout == MD_LAYOUT_FS) {
		char *copy = md_xasprintf("%s/%s", s->root, rel);
		for (char *p = copy + strlen(s->root) + 1; *p; p++) {
			if (*p != '/')
				continue;
			*p = '\0';
			bool ok = session_mkdir(s, copy, error);
			*p = '/';
			if (!ok) {
				free(copy);
				return false;
			}
		}
		free(copy);
	}
	if (!session_mkdir(s, dir, error) || !make_maildir(s, dir, error))
		return false;
	if (s->plugin->cfg->layout == MD_LAYOUT_MAILDIRPP) {
		char *marker = md_xasprintf("%s/maildirfolder", dir);
		int fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			*error = md_xasprintf("cannot create %s: %s", marker, strerror(errno));
			free(marker);
			return false;
		}
		close(fd);
		mark_parent_dirty(&s->dirty_dirs, marker);
		free(marker);
	}
	return true;
}

/* Messages a killed run left in tmp/ were never delivered: nobody will. */
static void remove_stale_tmp(struct md_session *s, struct md_folder *f)
{
	char *tmp = md_xasprintf("%s/tmp", f->dir);
	size_t n = md_remove_stale_tmp(tmp, s->plugin->hostname);
	if (n > 0)
		s->plugin->host->log(s->ctx, GW_LOG_INFO,
		                     "removed %zu unfinished files an interrupted run left in %s",
		                     n, tmp);
	free(tmp);
}

static gw_status md_ensure_folder(void *session, const struct gw_folder_path *path, void **folder,
                                  char folder_id[GW_SINK_ID_MAX])
{
	struct md_session *s = session;
	char *rel = NULL, *id = NULL, *error = NULL;
	gw_status rc = check_path(s, path);

	if (rc == GW_OK)
		rc = folder_names(s, path, &rel, &id);
	if (rc != GW_OK)
		return rc;
	char *dir = *rel ? md_xasprintf("%s/%s", s->root, rel) : md_xstrdup(s->root);
	struct md_folder *f = find_folder(s, dir);
	if (f) {
		free(dir);
	} else if (!create_folder_dirs(s, rel, dir, &error)) {
		int err = errno;
		free(dir);
		free(rel);
		free(id);
		return session_fail(s, io_status(err), error);
	} else {
		f = md_xcalloc(1, sizeof(*f));
		f->id = md_xstrdup(id);
		f->dir = dir;
		remove_stale_tmp(s, f);
		s->folders = md_xrealloc(s->folders, (s->folder_count + 1) * sizeof(*s->folders));
		s->folders[s->folder_count++] = f;
	}
	snprintf(folder_id, GW_SINK_ID_MAX, "%s", f->id);
	*folder = f;
	free(rel);
	free(id);
	return GW_OK;
}

/* ---- origin keys ------------------------------------------------------------------- */

static bool valid_origin_key(const char *key)
{
	size_t n = 0;
	for (; key[n]; n++)
		if (!((key[n] >= 'a' && key[n] <= 'z') || (key[n] >= '0' && key[n] <= '9')))
			return false;
	return n > 0 && n <= ORIGIN_KEY_MAX;
}

static gw_status scan_subdir(struct md_session *s, struct md_folder *f, const char *sub)
{
	char *dir = md_xasprintf("%s/%s", f->dir, sub);
	gw_status rc = GW_OK;
	if (!md_keyset_scan(&f->keys, dir) && errno != ENOENT)
		rc = session_fail(s, GW_ERR_FOLDER,
		                  md_xasprintf("cannot read %s: %s", dir, strerror(errno)));
	free(dir);
	return rc;
}

/* Read the folder's origin keys once per session. Appends do not add to the
 * set (the batch's keys have their own, emptied at each flush): the core
 * hands an origin to one session once (its state marks it pending first), so
 * the set only has to know what earlier sessions left, and a first migration
 * keeps it empty however large the mailbox. */
static gw_status load_keys(struct md_session *s, struct md_folder *f)
{
	if (f->keys_loaded)
		return GW_OK;
	gw_status rc = scan_subdir(s, f, "cur");
	if (rc == GW_OK)
		rc = scan_subdir(s, f, "new");
	f->keys_loaded = rc == GW_OK;
	return rc;
}

static const struct md_delivery *find_delivery(struct md_session *s, struct md_folder *f,
                                               const char *key)
{
	for (size_t i = 0; i < s->delivery_count; i++) {
		const struct md_delivery *d = &s->deliveries[i];
		if (d->folder == f && d->origin_key && strcmp(d->origin_key, key) == 0)
			return d;
	}
	return NULL;
}

/* The file of @p key: appended in this batch, or on disk (confirmed there,
 * because the set holds hashes only). */
static gw_status find_existing(struct md_session *s, struct md_folder *f, const char *key,
                               bool *found, char message_id[GW_SINK_ID_MAX])
{
	char *base = NULL;
	const struct md_delivery *d =
	        md_keyset_has(&s->delivery_keys, key) ? find_delivery(s, f, key) : NULL;
	*found = d != NULL;
	if (d) {
		snprintf(message_id, GW_SINK_ID_MAX, "%s", d->base);
		return GW_OK;
	}
	gw_status rc = load_keys(s, f);
	if (rc != GW_OK || !md_keyset_has(&f->keys, key))
		return rc;
	static const char *const subdirs[] = {"cur", "new"};
	for (size_t i = 0; i < 2 && !*found; i++) {
		char *dir = md_xasprintf("%s/%s", f->dir, subdirs[i]);
		*found = md_find_origin(dir, key, &base);
		free(dir);
	}
	if (*found) {
		snprintf(message_id, GW_SINK_ID_MAX, "%s", base);
		free(base);
	}
	return GW_OK;
}

static gw_status md_lookup(void *session, void *folder, const struct gw_sink_item *item,
                           bool *found, char message_id[GW_SINK_ID_MAX])
{
	*found = false;
	if (!item->origin_key || !valid_origin_key(item->origin_key))
		return GW_OK;
	return find_existing(session, folder, item->origin_key, found, message_id);
}

/* ---- flags and keywords ------------------------------------------------------------- */

/* Keywords without a letter are listed beside the folder, one line each:
 * "<message base name> <keyword, \xx-escaped>" (README.md). */
static void record_overflow(struct md_session *s, struct md_folder *f, const char *base,
                            const char *keyword)
{
	struct md_str line = {0};
	md_str_adds(&line, base);
	md_str_addc(&line, ' ');
	for (const unsigned char *p = (const unsigned char *)keyword; *p; p++) {
		if (*p <= 0x20 || *p == 0x7f || *p == '\\') {
			char seq[4];
			snprintf(seq, sizeof(seq), "\\%02x", *p);
			md_str_adds(&line, seq);
		} else {
			md_str_addc(&line, (char)*p);
		}
	}
	md_str_addc(&line, '\n');
	char *path = md_xasprintf("%s/" OVERFLOW_FILE, f->dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, line.data, line.len) != (ssize_t)line.len)
		s->plugin->host->log(s->ctx, GW_LOG_WARN, "cannot record keyword \"%s\" in %s: %s",
		                     keyword, path, strerror(errno));
	else if (!list_has(&s->written, path))
		list_add(&s->written, path);
	mark_parent_dirty(&s->dirty_dirs, path);
	if (fd >= 0)
		close(fd);
	free(path);
	free(line.data);
}

struct md_flags {
	char letters[8 + MD_KEYWORD_SLOTS]; /* Maildir info after ":2," */
	const char **unmapped;              /* keywords without a letter */
	size_t unmapped_count;
};

static gw_status keyword_letter(struct md_session *s, struct md_folder *f, const char *keyword,
                                uint32_t *bits, struct md_flags *flags)
{
	int index = md_keywords_index(&f->keywords, keyword);
	if (index >= 0) {
		*bits |= 1u << index;
		return GW_OK;
	}
	if (!list_has(&f->warned, keyword)) {
		list_add(&f->warned, keyword);
		s->plugin->host->log(s->ctx, GW_LOG_WARN,
		                     "keyword \"%s\" cannot be stored as a Maildir letter (only 26 "
		                     "keywords per folder, no spaces or control characters); "
		                     "recorded in %s/" OVERFLOW_FILE,
		                     keyword, f->dir);
	}
	flags->unmapped[flags->unmapped_count++] = keyword;
	return GW_OK;
}

/* System flag letters in ASCII order, then keyword letters a..z. */
static gw_status build_flags(struct md_session *s, struct md_folder *f,
                             const struct gw_message_meta *meta, struct md_flags *flags)
{
	uint32_t sys = meta->flags, bits = 0;
	char *out = flags->letters;
	char *error = NULL;

	if (!f->keywords.loaded && !md_keywords_load(&f->keywords, f->dir, &error))
		return session_fail(s, GW_ERR_FOLDER, error);
	flags->unmapped = md_xcalloc(meta->keyword_count + 1, sizeof(char *));
	for (size_t i = 0; i < meta->keyword_count; i++) {
		const char *kw = meta->keywords[i];
		if (strcasecmp(kw, "$Forwarded") == 0) {
			sys |= GW_FLAG_FORWARDED;
			continue;
		}
		gw_status rc = keyword_letter(s, f, kw, &bits, flags);
		if (rc != GW_OK)
			return rc;
	}
	static const struct {
		uint32_t flag;
		char letter;
	} order[] = {{GW_FLAG_DRAFT, 'D'},    {GW_FLAG_FLAGGED, 'F'}, {GW_FLAG_FORWARDED, 'P'},
	             {GW_FLAG_ANSWERED, 'R'}, {GW_FLAG_SEEN, 'S'},    {GW_FLAG_DELETED, 'T'}};
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (sys & order[i].flag)
			*out++ = order[i].letter;
	for (int i = 0; i < MD_KEYWORD_SLOTS; i++)
		if (bits & (1u << i))
			*out++ = (char)('a' + i);
	*out = '\0';
	return GW_OK;
}

/* ---- append ---------------------------------------------------------------------------- */

/* Makes tmp/ names unique within the process, across its sessions (several
 * may write one mailbox at once: GW_CAP_PARALLEL_SESSIONS). */
static unsigned long next_unique(void)
{
	static atomic_ulong counter;
	return atomic_fetch_add(&counter, 1) + 1;
}

/* Write the bytes into tmp/ under a name unique to this process. */
static gw_status write_tmp(struct md_session *s, struct md_folder *f, const struct gw_message *m,
                           char **tmp_path)
{
	char *error = NULL;
	/* A large message the core spooled to a file is copied from there. */
	int src_fd = GW_MESSAGE_HAS(m, file_fd) && m->in_file ? m->file_fd : -1;
	for (int attempt = 0; attempt < 8; attempt++) {
		char *path = md_xasprintf("%s/tmp/%lld.P%ldQ%lu.%s", f->dir, (long long)time(NULL),
		                          (long)getpid(), next_unique(), s->plugin->hostname);
		free(error);
		error = NULL;
		if (md_write_new_file(path, m->data, m->size, src_fd, m->meta->internal_date, true,
		                      &error)) {
			md_writeback_note(s->writeback, m->size);
			*tmp_path = path;
			return GW_OK;
		}
		int err = errno;
		free(path);
		if (err != EEXIST)
			return session_fail(s, io_status(err), error);
	}
	return session_fail(s, GW_ERR_FOLDER, error);
}

static gw_status check_item(struct md_session *s, const struct gw_sink_item *item)
{
	const struct gw_message *m = item ? item->message : NULL;
	if (!m || !m->meta || (!m->data && m->size > 0))
		return session_fail(s, GW_ERR_MESSAGE, md_xstrdup("append without message data"));
	if (item->origin_key && !valid_origin_key(item->origin_key))
		return session_fail(
		        s, GW_ERR_MESSAGE,
		        md_xasprintf("invalid origin key \"%s\" (want 1-%d of [a-z0-9])",
		                     item->origin_key, ORIGIN_KEY_MAX));
	return GW_OK;
}

/* "<date>.G<origin>.<host>,S=<size>"; without an origin key a unique token instead. */
static char *base_name(struct md_session *s, const struct gw_sink_item *item)
{
	const struct gw_message *m = item->message;
	long long date = m->meta->internal_date > 0 ? (long long)m->meta->internal_date : 0;
	if (item->origin_key)
		return md_xasprintf("%lld.G%s.%s,S=%zu", date, item->origin_key,
		                    s->plugin->hostname, m->size);
	return md_xasprintf("%lld.P%ldQ%luT%lld.%s,S=%zu", date, (long)getpid(), next_unique(),
	                    (long long)time(NULL), s->plugin->hostname, m->size);
}

static void add_delivery(struct md_session *s, struct md_folder *f, char *tmp, char *final,
                         const char *origin_key, const char *base)
{
	if (s->delivery_count == s->delivery_cap) {
		s->delivery_cap = s->delivery_cap ? 2 * s->delivery_cap : 64;
		s->deliveries =
		        md_xrealloc(s->deliveries, s->delivery_cap * sizeof(*s->deliveries));
	}
	s->deliveries[s->delivery_count++] = (struct md_delivery){
	        .folder = f,
	        .tmp = tmp,
	        .final = final,
	        .origin_key = origin_key ? md_xstrdup(origin_key) : NULL,
	        .base = md_xstrdup(base),
	};
	if (origin_key)
		md_keyset_add(&s->delivery_keys, origin_key, strlen(origin_key));
}

static gw_status md_append(void *session, void *folder, const struct gw_sink_item *item,
                           char message_id[GW_SINK_ID_MAX])
{
	struct md_session *s = session;
	struct md_folder *f = folder;
	struct md_flags flags = {0};
	bool present = false;
	char *tmp = NULL;

	gw_status rc = check_item(s, item);
	/* Appending an origin that is already there would duplicate it: hand back the file. */
	if (rc == GW_OK && item->origin_key)
		rc = find_existing(s, f, item->origin_key, &present, message_id);
	if (rc != GW_OK || present)
		return rc;
	rc = build_flags(s, f, item->message->meta, &flags);
	if (rc == GW_OK)
		rc = write_tmp(s, f, item->message, &tmp);
	if (rc == GW_OK) {
		char *base = base_name(s, item);
		char *final = md_xasprintf("%s/cur/%s:2,%s", f->dir, base, flags.letters);
		add_delivery(s, f, tmp, final, item->origin_key, base);
		for (size_t i = 0; i < flags.unmapped_count; i++)
			record_overflow(s, f, base, flags.unmapped[i]);
		snprintf(message_id, GW_SINK_ID_MAX, "%s", base);
		free(base);
	}
	free(flags.unmapped);
	return rc;
}

/* ---- flush ------------------------------------------------------------------------------- */

static bool flight_fail(struct md_flight *fl, int err, char *error)
{
	fl->status = io_status(err);
	fl->error = error;
	return false;
}

/* Everything the flight wrote onto the disk: one syncfs for the mailbox's file
 * system, or (kernels without it) one fsync per file. */
static bool flight_sync_data(struct md_flight *fl)
{
	if (syncfs(fl->root_fd) == 0)
		return true;
	if (errno != ENOSYS)
		return flight_fail(fl, errno,
		                   md_xasprintf("cannot sync the file system of %s: %s", fl->root,
		                                strerror(errno)));
	char *error = NULL;
	for (size_t i = 0; i < fl->delivery_count; i++)
		if (!md_fsync_path(fl->deliveries[i].tmp, false, &error))
			return flight_fail(fl, errno, error);
	for (size_t i = 0; i < fl->written.count; i++)
		if (!md_fsync_path(fl->written.items[i], false, &error))
			return flight_fail(fl, errno, error);
	for (size_t i = 0; i < fl->staged_count; i++)
		if (!md_fsync_path(fl->staged[i]->keywords_tmp, false, &error))
			return flight_fail(fl, errno, error);
	return true;
}

static bool flight_sync_dirs(struct md_flight *fl)
{
	for (size_t i = 0; i < fl->dirty_dirs.count; i++) {
		char *error = NULL;
		if (!md_fsync_path(fl->dirty_dirs.items[i], true, &error))
			return flight_fail(fl, errno, error);
	}
	return true;
}

static bool flight_replace_keyword_files(struct md_flight *fl)
{
	for (size_t i = 0; i < fl->staged_count; i++) {
		struct md_folder *f = fl->staged[i];
		char *error = NULL;
		mark_parent_dirty(&fl->dirty_dirs, f->keywords_tmp);
		if (!md_keywords_replace(f->keywords_tmp, f->dir, &error))
			return flight_fail(fl, errno, error);
		free(f->keywords_tmp);
		f->keywords_tmp = NULL;
	}
	return true;
}

/* tmp/ -> cur/, in append order. A message is in cur/ only once its bytes are
 * on disk, so cur/ never holds a partial message, whatever happens. */
static bool flight_move_into_cur(struct md_flight *fl)
{
	for (; fl->moved < fl->delivery_count; fl->moved++) {
		struct md_delivery *d = &fl->deliveries[fl->moved];
		if (rename(d->tmp, d->final) != 0)
			return flight_fail(fl, errno,
			                   md_xasprintf("cannot move %s to %s: %s", d->tmp,
			                                d->final, strerror(errno)));
		mark_parent_dirty(&fl->dirty_dirs, d->tmp);
		mark_parent_dirty(&fl->dirty_dirs, d->final);
	}
	return true;
}

static void *flight_run(void *arg)
{
	struct md_flight *fl = arg;
	bool data = fl->delivery_count + fl->written.count + fl->staged_count > 0;
	bool ok = !fl->durable || !data || flight_sync_data(fl);
	ok = ok && flight_replace_keyword_files(fl);
	/* A message reaches cur/ only after the names its letters stand for. */
	ok = ok && (!fl->durable || fl->staged_count == 0 || flight_sync_dirs(fl));
	ok = ok && flight_move_into_cur(fl);
	ok = ok && (!fl->durable || flight_sync_dirs(fl));
	return NULL;
}

/* The keyword table of every folder that gained keywords, written beside its
 * file, to be synced with the batch's messages and then renamed over it. */
static gw_status stage_keyword_files(struct md_session *s, struct md_flight *fl)
{
	for (size_t i = 0; i < s->folder_count; i++) {
		struct md_folder *f = s->folders[i];
		if (!f->keywords.dirty)
			continue;
		char *error = NULL;
		f->keywords_tmp = md_keywords_stage(&f->keywords, f->dir, &error);
		if (!f->keywords_tmp)
			return session_fail(s, io_status(errno), error);
		f->keywords.dirty = false; /* the staged table holds every name so far */
		fl->staged = md_xrealloc(fl->staged, (fl->staged_count + 1) * sizeof(*fl->staged));
		fl->staged[fl->staged_count++] = f;
	}
	return GW_OK;
}

/* Hand what was appended since the last flush to the session's flight. */
static gw_status flight_take(struct md_session *s)
{
	struct md_flight *fl = &s->flight;
	if (s->flying) { /* a core that did not wait: one flight at a time */
		gw_status rc = flight_land(s, true);
		if (rc != GW_OK)
			return rc;
	}
	*fl = (struct md_flight){.durable = s->plugin->cfg->fsync,
	                         .root_fd = s->root_fd,
	                         .root = s->root,
	                         .deliveries = s->deliveries,
	                         .delivery_count = s->delivery_count,
	                         .written = s->written,
	                         .dirty_dirs = s->dirty_dirs};
	s->deliveries = NULL;
	s->delivery_count = s->delivery_cap = 0;
	md_keyset_clear(&s->delivery_keys);
	memset(&s->written, 0, sizeof(s->written));
	memset(&s->dirty_dirs, 0, sizeof(s->dirty_dirs));
	s->flying = true;
	fl->status = stage_keyword_files(s, fl); /* a failure lands the flight unflown */
	return fl->status;
}

/* Join the flight and settle it. On failure nothing of it counts as durable
 * (the core asks lookup on the next run, which finds what reached cur/): the
 * rest of its tmp/ files go, its folders' keys are read again on next use,
 * and a keyword table that was not replaced is staged again. */
static gw_status flight_land(struct md_session *s, bool report)
{
	struct md_flight *fl = &s->flight;
	if (!s->flying)
		return GW_OK;
	if (fl->threaded)
		pthread_join(fl->thread, NULL);
	gw_status rc = fl->status;
	for (size_t i = 0; i < fl->delivery_count; i++) {
		struct md_delivery *d = &fl->deliveries[i];
		if (rc != GW_OK) {
			if (i >= fl->moved)
				unlink(d->tmp);
			md_keyset_free(&d->folder->keys);
			d->folder->keys_loaded = false;
		}
		delivery_free(d);
	}
	for (size_t i = 0; i < fl->staged_count; i++) {
		struct md_folder *f = fl->staged[i];
		if (f->keywords_tmp) {
			unlink(f->keywords_tmp);
			free(f->keywords_tmp);
			f->keywords_tmp = NULL;
			f->keywords.dirty = true;
		}
	}
	if (rc != GW_OK && report)
		rc = session_fail(s, rc, fl->error);
	else
		free(fl->error);
	free(fl->deliveries);
	free(fl->staged);
	list_free(&fl->written);
	list_free(&fl->dirty_dirs);
	memset(fl, 0, sizeof(*fl));
	s->flying = false;
	return rc;
}

static gw_status md_flush_begin(void *session)
{
	struct md_session *s = session;
	gw_status rc = flight_take(s);
	if (rc != GW_OK) {
		flight_land(s, false);
		return rc;
	}
	/* Without a thread the flight runs here, and flush_wait only reports it. */
	s->flight.threaded = pthread_create(&s->flight.thread, NULL, flight_run, &s->flight) == 0;
	if (!s->flight.threaded)
		flight_run(&s->flight);
	return GW_OK;
}

static gw_status md_flush_wait(void *session)
{
	return flight_land(session, true);
}

static gw_status md_flush(void *session)
{
	struct md_session *s = session;
	gw_status rc = flight_take(s);
	if (rc == GW_OK)
		flight_run(&s->flight);
	gw_status landed = flight_land(s, rc == GW_OK);
	return rc != GW_OK ? rc : landed;
}

/* ---- descriptor ----------------------------------------------------------------------------- */

static const char *const layout_choices[] = {"maildirpp", "fs", NULL};

static const struct gw_option md_options[] = {
        {.name = "path",
         .type = GW_OPT_PATH,
         .flags = GW_OPT_REQUIRED,
         .offset = offsetof(struct md_config, path),
         .description = "Maildir root of each mailbox; {email}, {user}, {domain} and {username} "
                        "are replaced (e.g. ./dry-run/{email})"},
        {.name = "layout",
         .type = GW_OPT_ENUM,
         .default_value = "maildirpp",
         .offset = offsetof(struct md_config, layout),
         .choices = layout_choices,
         .description = "Folder tree: maildirpp (.Sent, .Archive.2019) or fs (nested directories)"},
        {.name = "fsync",
         .type = GW_OPT_BOOL,
         .default_value = "true",
         .offset = offsetof(struct md_config, fsync),
         .description = "Make each batch durable (syncfs + directory fsync) before the state "
                        "commits it"},
        GW_OPTION_END,
};

static const struct gw_sink_ops md_sink_ops = {
        .struct_size = sizeof(struct gw_sink_ops),
        .init = md_init,
        .fini = md_fini,
        .open = md_open,
        .ensure_folder = md_ensure_folder,
        .append = md_append,
        .lookup = md_lookup,
        .flush = md_flush,
        .close = md_close,
        .flush_begin = md_flush_begin,
        .flush_wait = md_flush_wait,
};

static const struct gw_plugin md_plugin_descriptor = {
        GW_PLUGIN_HEADER,
        .kind = GW_PLUGIN_SINK,
        .name = "maildir",
        .version = "1.0.0",
        .description = "Writes mailboxes into Maildir++ or fs-layout Maildir trees, byte for byte",
        .license = "MIT",
        .capabilities =
                GW_CAP_KEYWORDS | GW_CAP_INTERNALDATE | GW_CAP_LOOKUP | GW_CAP_PARALLEL_SESSIONS,
        .options = md_options,
        .config_size = sizeof(struct md_config),
        .sink = &md_sink_ops,
};

GW_PLUGIN_DEFINE(sink, maildir, md_plugin_descriptor)
