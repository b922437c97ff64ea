/* Internal interfaces of the maildir sink (see README.md for the on-disk
 * layout). The plugin sees the core only through the gw_host table. */
#ifndef GW_SINK_MAILDIR_H
#define GW_SINK_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <godwit/godwit.h>

enum md_layout { MD_LAYOUT_MAILDIRPP = 0, MD_LAYOUT_FS = 1 };

/* Bound options (option table in maildir.c). */
struct md_config {
	const char *path;
	int layout; /* enum md_layout */
	bool fsync;
};

/* A component longer than this after escaping is cut and hashed. */
#define MD_COMPONENT_MAX 200
/* Longest directory entry name (NAME_MAX on Linux). */
#define MD_NAME_MAX 255
/* Keyword letters a..z. */
#define MD_KEYWORD_SLOTS 26

/* ---- memory (abort on exhaustion, like the core) ---- */
void *md_xmalloc(size_t size);
void *md_xcalloc(size_t count, size_t size);
void *md_xrealloc(void *ptr, size_t size);
char *md_xstrdup(const char *s);
char *md_xasprintf(const char *fmt, ...) GW_PRINTF(1, 2);

/* Growable string, always NUL-terminated once anything was added. */
struct md_str {
	char *data;
	size_t len;
	size_t cap;
};
void md_str_add(struct md_str *s, const void *data, size_t len);
void md_str_addc(struct md_str *s, char c);
void md_str_adds(struct md_str *s, const char *text);
/* Take ownership of the string ("" if nothing was added). */
char *md_str_take(struct md_str *s);

/* ---- names (maildir_name.c) ---- */

/* Escape one folder name component (README.md, "Folder names"). With
 * @p fs_layout, names the fs layout reserves (cur, new, tmp, dovecot*, ...)
 * get their first character escaped too. Caller frees. */
char *md_escape_component(const char *name, bool fs_layout);
/* If @p name is longer than @p limit bytes, cut it (never inside an escape
 * sequence or a UTF-8 character) and append "~" + 8 hex digits of the
 * SHA-256 of the whole name, so the result is at most @p limit bytes.
 * Returns true if it cut. */
bool md_fit_name(char **name, size_t limit);
/* A path component that cannot leave its parent: not empty, not "." or "..",
 * no '/' and no NUL. */
bool md_component_is_safe(const char *component, size_t len);
/* True for INBOX, by role or by a single component named INBOX (any case). */
bool md_is_inbox(const struct gw_folder_path *path);

/* Expand {email} {user} {domain} {username} in @p tmpl. Substituted values are
 * sanitised ('/' and control characters become '_', a leading '.' becomes
 * '_'). Returns NULL and sets *error (caller frees) for an unknown
 * placeholder, an unterminated '{' or a value that is empty. */
char *md_expand_path(const char *tmpl, const struct gw_mailbox *mailbox, char **error);
/* Check a template's placeholders without a mailbox. */
bool md_check_template(const char *tmpl, char **error);

/* The host name as it appears in file names: [A-Za-z0-9.-], others '_'. */
void md_hostname(char *out, size_t size);

/* Lower-case hex of the SHA-256 of @p data. */
void md_sha256_hex(const void *data, size_t len, char out[65]);

/* ---- origin keys already in a folder (maildir_keys.c) ---- */

/* Set of origin keys (stored as 64-bit hashes; a hit is confirmed on disk). */
struct md_keyset {
	uint64_t *slots; /* 0 = empty */
	size_t cap;
	size_t count;
};
void md_keyset_add(struct md_keyset *set, const char *key, size_t len);
bool md_keyset_has(const struct md_keyset *set, const char *key);
/* Empty the set, keeping its memory for the next batch. */
void md_keyset_clear(struct md_keyset *set);
void md_keyset_free(struct md_keyset *set);
/* Add the origin key of every godwit-written file in @p dir (cur/ or new/). */
bool md_keyset_scan(struct md_keyset *set, const char *dir);
/* Find the file of @p key in @p dir; on success *base is its name up to ":2,"
 * (caller frees). */
bool md_find_origin(const char *dir, const char *key, char **base);

/* ---- keywords file (maildir_keywords.c) ---- */

struct md_keywords {
	bool loaded;
	bool dirty;                    /* names added since the file was last written */
	char *names[MD_KEYWORD_SLOTS]; /* index = letter - 'a' */
};
/* Read <folder>/dovecot-keywords if present. */
bool md_keywords_load(struct md_keywords *kw, const char *folder_dir, char **error);
/* Letter index of @p name, adding it to the table (and setting dirty) if new.
 * Returns -1 if all 26 slots are taken or the name cannot be stored (space or
 * control character). */
int md_keywords_index(struct md_keywords *kw, const char *name);
/* The table written to a temporary file beside <folder>/dovecot-keywords: its
 * path (caller frees), or NULL with *error set. Not synced: the caller makes
 * it durable before md_keywords_replace, because a keyword file lost to a
 * crash would strip the letters of messages already delivered. */
char *md_keywords_stage(const struct md_keywords *kw, const char *folder_dir, char **error);
/* Rename the staged file over <folder>/dovecot-keywords. */
bool md_keywords_replace(const char *tmp, const char *folder_dir, char **error);
void md_keywords_free(struct md_keywords *kw);

/* ---- files (maildir_io.c) ---- */

/* Write all of @p data to a new file @p path (O_EXCL) and set its times. With
 * @p src_fd >= 0 the same bytes are copied from that file (offset 0) instead. */
bool md_write_new_file(const char *path, const void *data, size_t len, int src_fd, int64_t mtime,
                       bool set_times, char **error);
/* mkdir if missing; *created tells whether it was created. */
bool md_mkdir(const char *path, bool *created, char **error);
bool md_fsync_path(const char *path, bool directory, char **error);
/* Remove files an interrupted run of this sink left in @p tmp_dir: names this
 * sink makes on @p host whose writing process is gone. Returns how many. */
size_t md_remove_stale_tmp(const char *tmp_dir, const char *host);

#endif
