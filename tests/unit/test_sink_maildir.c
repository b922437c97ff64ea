/* The maildir sink, loaded as the real plugin through the loader with the
 * core's host table: byte-exact files, flags, keywords, dates, hostile folder
 * names (never outside the root, reversible by the README's decoder), lookup
 * across sessions and flush. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "loader.h"
#include "log.h"
#include "optbind.h"
#include "spool.h"

static const struct gw_loaded_plugin *plugin;
static struct gw_loader loader;
static char base_dir[] = "/tmp/gw-test-maildir-XXXXXX";

/* One configured plugin instance and one open mailbox session. */
struct fixture {
	void *config;
	struct gw_optstore *store;
	struct gw_ctx ctx;
	void *state;
	void *session;
	char root[1024];
};

static int load_plugin(void **unused)
{
	char *err = NULL;
	assert_non_null(mkdtemp(base_dir));
	gw_loader_init(&loader, NULL, 0, NULL, 0);
	plugin = gw_loader_load_file(&loader, GW_BUILD_PLUGIN_DIR "/gw-sink-maildir.so", &err);
	if (!plugin)
		fail_msg("loading the plugin: %s", err);
	assert_int_equal(plugin->desc.kind, GW_PLUGIN_SINK);
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int unload_plugin(void **unused)
{
	nftw(base_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	gw_loader_free(&loader);
	return 0;
}

static const struct gw_option *find_option(const char *name)
{
	for (const struct gw_option *o = plugin->desc.options; o && o->name; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	fail_msg("no option %s", name);
	return NULL;
}

/* Bind options as the core does: given values, else defaults. */
static void configure(struct fixture *f, const char *path, const char *layout, const char *fsync)
{
	const char *values[][2] = {{"path", path}, {"layout", layout}, {"fsync", fsync}};
	char *err = NULL;
	f->config = calloc(1, plugin->desc.config_size);
	f->store = gw_optstore_new(NULL);
	for (size_t i = 0; i < 3; i++) {
		const struct gw_option *o = find_option(values[i][0]);
		const char *text = values[i][1] ? values[i][1] : o->default_value;
		if (text && !gw_option_parse_value(o, text, f->config, f->store, &err))
			fail_msg("option %s: %s", o->name, err);
	}
}

static const struct gw_mailbox alice = {.struct_size = sizeof(struct gw_mailbox),
                                        .email = "alice@example.org",
                                        .username = "alice"};

static struct fixture *start(const char *name, const char *layout, const struct gw_mailbox *mb)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s/{email}", base_dir, name);
	snprintf(f->root, sizeof(f->root), "%s/%s/%s", base_dir, name, mb->email);
	configure(f, path, layout, NULL);
	assert_int_equal(plugin->sink.init(gw_host_table(), &f->ctx, f->config, &f->state), GW_OK);
	gw_status rc = plugin->sink.open(f->state, &f->ctx, mb, &f->session);
	if (rc != GW_OK)
		fail_msg("open: %s", f->ctx.error);
	return f;
}

static void stop(struct fixture *f)
{
	if (f->session)
		plugin->sink.close(f->session);
	plugin->sink.fini(f->state);
	gw_optstore_free(f->store);
	free(f->config);
	free(f);
}

static void *ensure(struct fixture *f, const char *const *components, size_t count,
                    enum gw_folder_role role, char id[GW_SINK_ID_MAX])
{
	struct gw_folder_path p = {sizeof(p), count, components, role};
	void *folder = NULL;
	gw_status rc = plugin->sink.ensure_folder(f->session, &p, &folder, id);
	if (rc != GW_OK)
		fail_msg("ensure_folder: %s", f->ctx.error);
	return folder;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char d[32];
	unsigned n = 0;
	assert_int_equal(EVP_Digest(data, len, d, &n, EVP_sha256(), NULL), 1);
	for (unsigned i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

struct msg {
	struct gw_message_meta meta;
	struct gw_message message;
	struct gw_sink_item item;
	char sha[65];
};

static void make_msg(struct msg *m, const void *data, size_t len, int64_t date, uint32_t flags,
                     const char *const *keywords, size_t keyword_count, const char *origin)
{
	memset(m, 0, sizeof(*m));
	m->meta = (struct gw_message_meta){.struct_size = sizeof(m->meta),
	                                   .uid = 1,
	                                   .size = len,
	                                   .internal_date = date,
	                                   .flags = flags,
	                                   .keyword_count = keyword_count,
	                                   .keywords = keywords};
	sha256_hex(data, len, m->sha);
	m->message = (struct gw_message){.struct_size = sizeof(m->message),
	                                 .meta = &m->meta,
	                                 .data = data,
	                                 .size = len,
	                                 .sha256_hex = m->sha};
	m->item = (struct gw_sink_item){
	        .struct_size = sizeof(m->item), .message = &m->message, .origin_key = origin};
}

static void append_ok(struct fixture *f, void *folder, struct msg *m, char id[GW_SINK_ID_MAX])
{
	gw_status rc = plugin->sink.append(f->session, folder, &m->item, id);
	if (rc != GW_OK)
		fail_msg("append: %s", f->ctx.error);
}

/* The file in @p dir/cur whose name starts with "<id>:2,"; returns its flags part. */
static char *file_of(const char *dir, const char *id, char *path, size_t size)
{
	char cur[PATH_MAX];
	snprintf(cur, sizeof(cur), "%s/cur", dir);
	DIR *d = opendir(cur);
	assert_non_null(d);
	char *flags = NULL;
	size_t id_len = strlen(id);
	for (struct dirent *e; (e = readdir(d));) {
		if (strncmp(e->d_name, id, id_len) == 0 &&
		    strncmp(e->d_name + id_len, ":2,", 3) == 0) {
			assert_null(flags); /* exactly one */
			int n = snprintf(path, size, "%s/%s", cur, e->d_name);
			assert_true(n > 0 && (size_t)n < size);
			flags = strdup(e->d_name + id_len + 3);
		}
	}
	closedir(d);
	if (!flags)
		fail_msg("no file %s:2,* in %s", id, cur);
	return flags;
}

static int entries_in(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void file_sha(const char *path, char out[65], size_t *size)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	unsigned char *buf = malloc(st.st_size ? st.st_size : 1);
	assert_int_equal(read(fd, buf, st.st_size), st.st_size);
	close(fd);
	sha256_hex(buf, st.st_size, out);
	*size = st.st_size;
	free(buf);
}

static void flush_ok(struct fixture *f)
{
	gw_status rc = plugin->sink.flush(f->session);
	if (rc != GW_OK)
		fail_msg("flush: %s", f->ctx.error);
}

static void flush_ok(struct fixture *f);

/* ---- bytes ---- */

static void expect_exact(struct fixture *f, const char *dir, const char *id, struct msg *m)
{
	char path[PATH_MAX], sha[65];
	size_t size;
	free(file_of(dir, id, path, sizeof(path)));
	file_sha(path, sha, &size);
	assert_int_equal(size, m->message.size);
	assert_string_equal(sha, m->sha);
}

static void test_byte_exact(void **unused)
{
	struct fixture *f = start("bytes", NULL, &alice);
	char id[4][GW_SINK_ID_MAX];
	static const char crlf[] = "Subject: crlf\r\n\r\nline one\r\nline two\r\n";
	static const char lf[] = "Subject: lf\n\nbare\nlf\n\n";
	static const char nul[] = "Subject: nul\r\n\r\na\0b\0\0c\r\n\xff\xfe";
	struct msg m[4];
	void *inbox = ensure(f, (const char *[]){"INBOX"}, 1, GW_ROLE_NONE, id[0]);
	assert_string_equal(id[0], "INBOX");

	make_msg(&m[0], crlf, sizeof(crlf) - 1, 1600000000, 0, NULL, 0, "crlf1");
	make_msg(&m[1], lf, sizeof(lf) - 1, 1600000001, 0, NULL, 0, "lf1");
	make_msg(&m[2], nul, sizeof(nul) - 1, 1600000002, 0, NULL, 0, "nul1");
	for (int i = 0; i < 3; i++)
		append_ok(f, inbox, &m[i], id[i]);

	/* 10 MB through the spool's file path, handed over as a mapping. */
	const size_t big = 10u * 1000 * 1000;
	unsigned char *bytes = malloc(big);
	uint32_t x = 7;
	for (size_t i = 0; i < big; i++) {
		x = x * 1664525u + 1013904223u;
		bytes[i] = (unsigned char)(x >> 24);
	}
	struct gw_spool *sp = gw_spool_new(base_dir, 1024 * 1024);
	const unsigned char *data;
	size_t len;
	char hex[65], *err = NULL;
	assert_true(gw_spool_begin(sp, big, &err));
	for (size_t off = 0; off < big; off += 100000)
		assert_true(gw_spool_write(sp, bytes + off, 100000, &err));
	assert_true(gw_spool_finish(sp, &data, &len, hex, &err));
	make_msg(&m[3], data, len, 1600000003, 0, NULL, 0, "big1");
	assert_string_equal(m[3].sha, hex);
	append_ok(f, inbox, &m[3], id[3]);
	gw_spool_free(sp);
	free(bytes);

	flush_ok(f);
	for (int i = 0; i < 4; i++)
		expect_exact(f, f->root, id[i], &m[i]);

	/* The id: "<date>.G<origin>.<host>,S=<size>". */
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	for (char *p = host; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
			*p = '_';
	char want[GW_SINK_ID_MAX];
	snprintf(want, sizeof(want), "1600000000.Gcrlf1.%.64s,S=%zu", host, sizeof(crlf) - 1);
	assert_string_equal(id[0], want);

	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s/tmp", f->root);
	assert_int_equal(entries_in(tmp), 0);
	stop(f);
}

/* A message the core spooled to a file is copied from that file in the kernel:
 * its mapped bytes are never read (here they cannot be: the mapping allows no
 * access), and the descriptor's offset is left alone. */
static void test_spooled_file_copied_in_kernel(void **unused)
{
	struct fixture *f = start("spooled", NULL, &alice);
	char id[GW_SINK_ID_MAX];
	void *inbox = ensure(f, (const char *[]){"INBOX"}, 1, GW_ROLE_NONE, id);
	const size_t big = 3u * 1000 * 1000 + 7;
	unsigned char *bytes = malloc(big);
	memcpy(bytes, "Subject: spooled\r\n\r\n", 21);
	for (size_t i = 21; i < big; i++)
		bytes[i] = (unsigned char)(i * 2654435761u >> 13);
	struct gw_spool *sp = gw_spool_new(base_dir, 1024 * 1024);
	const unsigned char *data;
	size_t len;
	char hex[65], *err = NULL;
	assert_true(gw_spool_begin(sp, big, &err));
	assert_true(gw_spool_write(sp, bytes, big, &err));
	assert_true(gw_spool_finish(sp, &data, &len, hex, &err));
	int fd = gw_spool_file(sp);
	assert_true(fd >= 0);
	off_t offset_before = lseek(fd, 0, SEEK_CUR);

	struct msg m;
	make_msg(&m, data, len, 1600000100, 0, NULL, 0, "spooled1");
	void *no_access = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(no_access != MAP_FAILED);
	m.message.data = no_access;
	m.message.in_file = true;
	m.message.file_fd = fd;
	append_ok(f, inbox, &m, id);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), offset_before);
	flush_ok(f);
	expect_exact(f, f->root, id, &m);

	munmap(no_access, len);
	gw_spool_free(sp);
	free(bytes);
	stop(f);
}

/* ---- flags, keywords, dates ---- */

static char *flags_after_append(struct fixture *f, void *folder, const char *dir, uint32_t flags,
                                const char *const *kw, size_t kw_count, const char *origin)
{
	struct msg m;
	char id[GW_SINK_ID_MAX], path[PATH_MAX];
	make_msg(&m, "x\r\n", 3, 1000000000, flags, kw, kw_count, origin);
	append_ok(f, folder, &m, id);
	flush_ok(f);
	return file_of(dir, id, path, sizeof(path));
}

#define EXPECT_FLAGS(f, folder, dir, flags, kw, n, origin, want)                                   \
	do {                                                                                       \
		char *got_ = flags_after_append(f, folder, dir, flags, kw, n, origin);             \
		assert_string_equal(got_, want);                                                   \
		free(got_);                                                                        \
	} while (0)

static void test_flags_sorted(void **unused)
{
	struct fixture *f = start("flags", NULL, &alice);
	char id[GW_SINK_ID_MAX];
	void *inbox = ensure(f, (const char *[]){"Whatever"}, 1, GW_ROLE_INBOX, id);
	assert_string_equal(id, "INBOX");
	EXPECT_FLAGS(f, inbox, f->root, 0, NULL, 0, "f0", "");
	EXPECT_FLAGS(f, inbox, f->root,
	             GW_FLAG_SEEN | GW_FLAG_ANSWERED | GW_FLAG_FLAGGED | GW_FLAG_DELETED |
	                     GW_FLAG_DRAFT | GW_FLAG_FORWARDED,
	             NULL, 0, "f1", "DFPRST");
	EXPECT_FLAGS(f, inbox, f->root, GW_FLAG_SEEN | GW_FLAG_FLAGGED, NULL, 0, "f2", "FS");
	EXPECT_FLAGS(f, inbox, f->root, GW_FLAG_DELETED | GW_FLAG_ANSWERED, NULL, 0, "f3", "RT");
	/* $Forwarded as a keyword is the flag P, not a keyword letter. */
	EXPECT_FLAGS(f, inbox, f->root, GW_FLAG_SEEN, (const char *[]){"$forwarded"}, 1, "f4",
	             "PS");
	stop(f);
}

static char *read_text(const char *path)
{
	FILE *fp = fopen(path, "r");
	if (!fp)
		return NULL;
	char *buf = calloc(1, 65536);
	size_t n = fread(buf, 1, 65535, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

/* Run @p fn with stderr (where the core's log goes) captured; returns the text. */
static char *capture_stderr(void (*fn)(void *), void *arg)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/stderr.txt", base_dir);
	fflush(stderr);
	int saved = dup(2);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	dup2(fd, 2);
	close(fd);
	fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	char *text = read_text(path);
	unlink(path);
	return text;
}

struct many_kw {
	struct fixture *f;
	void *folder;
	const char *dir;
	char *flags;
};

static void append_many_keywords(void *arg)
{
	struct many_kw *a = arg;
	static char names[30][8];
	static const char *kw[31];
	for (int i = 0; i < 30; i++) {
		snprintf(names[i], sizeof(names[i]), "kw%d", i);
		kw[i] = names[i];
	}
	kw[30] = "has space";
	a->flags = flags_after_append(a->f, a->folder, a->dir, GW_FLAG_SEEN, kw, 31, "many1");
	free(flags_after_append(a->f, a->folder, a->dir, 0, kw + 27, 2, "many2"));
}

static void test_keywords(void **unused)
{
	struct fixture *f = start("keywords", NULL, &alice);
	char id[GW_SINK_ID_MAX], path[PATH_MAX], dir[2048];

	/* A fresh folder: keywords numbered in order of appearance. */
	void *work = ensure(f, (const char *[]){"Work"}, 1, GW_ROLE_NONE, id);
	snprintf(dir, sizeof(dir), "%s/.Work", f->root);
	EXPECT_FLAGS(f, work, dir, GW_FLAG_SEEN, ((const char *[]){"$Junk", "work", "$Label1"}), 3,
	             "k1", "Sabc");
	EXPECT_FLAGS(f, work, dir, 0, ((const char *[]){"$Label1", "$Junk"}), 2, "k2", "ac");
	EXPECT_FLAGS(f, work, dir, GW_FLAG_FLAGGED, ((const char *[]){"new"}), 1, "k3", "Fd");
	snprintf(path, sizeof(path), "%s/dovecot-keywords", dir);
	char *text = read_text(path);
	assert_string_equal(text, "0 $Junk\n1 work\n2 $Label1\n3 new\n");
	free(text);

	/* An existing keywords file is respected; new names take free numbers. */
	snprintf(dir, sizeof(dir), "%s/.Old", f->root);
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/dovecot-keywords", dir);
	FILE *fp = fopen(path, "w");
	fputs("0 old\n3 other\nbroken line\n", fp);
	fclose(fp);
	void *old = ensure(f, (const char *[]){"Old"}, 1, GW_ROLE_NONE, id);
	assert_string_equal(id, ".Old");
	EXPECT_FLAGS(f, old, dir, 0, ((const char *[]){"other", "fresh", "old"}), 3, "o1", "abd");
	text = read_text(path);
	assert_string_equal(text, "0 old\n1 fresh\n3 other\n");
	free(text);

	/* Beyond 26 (or unstorable): warned once, recorded, message still written. */
	snprintf(dir, sizeof(dir), "%s/.Many", f->root);
	struct many_kw a = {f, ensure(f, (const char *[]){"Many"}, 1, GW_ROLE_NONE, id), dir, NULL};
	char *log = capture_stderr(append_many_keywords, &a);
	assert_string_equal(a.flags, "Sabcdefghijklmnopqrstuvwxyz");
	free(a.flags);
	for (int i = 26; i < 30; i++) {
		char want[128];
		snprintf(want, sizeof(want),
		         "keyword \"kw%d\" cannot be stored as a Maildir letter", i);
		assert_non_null(strstr(log, want));
		assert_null(strstr(strstr(log, want) + 1, want)); /* once per folder */
	}
	assert_non_null(strstr(log, "keyword \"has space\" cannot be stored"));
	free(log);
	snprintf(path, sizeof(path), "%s/godwit-keywords-overflow", dir);
	text = read_text(path);
	assert_non_null(text);
	/* many1: kw26..kw29 and "has space"; many2: kw27 has no letter, kw28 neither. */
	int lines = 0;
	for (char *p = text; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 7);
	assert_non_null(strstr(text, ".Gmany1."));
	assert_non_null(strstr(text, " kw26\n"));
	assert_non_null(strstr(text, " has\\20space\n"));
	free(text);
	stop(f);
}

static void test_mtime(void **unused)
{
	struct fixture *f = start("dates", NULL, &alice);
	const int64_t dates[] = {
	        803174400,  /* 1995-06-15 */
	        2240611200, /* 2041-01-01, past 2038 */
	        4102444800, /* 2100-01-01 */
	        -315619200, /* 1960-01-01 */
	        0,
	};
	char id[GW_SINK_ID_MAX], path[PATH_MAX];
	void *inbox = ensure(f, (const char *[]){"INBOX"}, 1, GW_ROLE_INBOX, id);
	for (size_t i = 0; i < sizeof(dates) / sizeof(dates[0]); i++) {
		struct msg m;
		char origin[16];
		snprintf(origin, sizeof(origin), "d%zu", i);
		make_msg(&m, "Subject: d\r\n\r\n", 14, dates[i], 0, NULL, 0, origin);
		append_ok(f, inbox, &m, id);
		flush_ok(f);
		free(file_of(f->root, id, path, sizeof(path)));
		struct stat st;
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal((int64_t)st.st_mtim.tv_sec, dates[i]);
		assert_int_equal((int64_t)st.st_atim.tv_sec, dates[i]);
		/* The name never starts with '-': dates before 1970 are 0 there. */
		char want[64];
		snprintf(want, sizeof(want), "%lld.G%s.", dates[i] > 0 ? (long long)dates[i] : 0LL,
		         origin);
		assert_memory_equal(id, want, strlen(want));
	}
	stop(f);
}

/* ---- folder names ---- */

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The README's decoder. A component of 197-200 bytes ending in "~" and 8 hex
 * digits was shortened and cannot be decoded: returns false for it. */
static bool is_shortened(const char *c, size_t len, size_t min, size_t max)
{
	if (len < min || len > max || c[len - 9] != '~')
		return false;
	for (size_t i = len - 8; i < len; i++)
		if (hexval(c[i]) < 0)
			return false;
	return true;
}

static bool decode_component(const char *c, size_t len, char *out)
{
	if (is_shortened(c, len, 197, 200))
		return false;
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (c[i] == '\\' && i + 2 < len && hexval(c[i + 1]) >= 0 && hexval(c[i + 2]) >= 0) {
			out[n++] = (char)(hexval(c[i + 1]) * 16 + hexval(c[i + 2]));
			i += 2;
		} else {
			out[n++] = c[i];
		}
	}
	out[n] = '\0';
	return true;
}

/* Decode a folder id into components joined by '\x1e' (a byte no test name uses). */
static bool decode_id(const char *id, bool fs, char *out)
{
	if (strcmp(id, "INBOX") == 0) {
		strcpy(out, "INBOX");
		return true;
	}
	if (!fs && is_shortened(id, strlen(id), 252, 255))
		return false;
	const char *p = fs ? id : id + 1;
	char sep = fs ? '/' : '.';
	assert_true(fs || id[0] == '.');
	out[0] = '\0';
	while (true) {
		const char *end = strchr(p, sep);
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char comp[1024];
		if (!decode_component(p, len, comp))
			return false;
		if (out[0] || p != (fs ? id : id + 1))
			strcat(out, "\x1e");
		strcat(out, comp);
		if (!end)
			return true;
		p = end + 1;
	}
}

static void join_components(const char *const *c, size_t n, char *out)
{
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(out, "\x1e");
		strcat(out, c[i]);
	}
}

/* The directory is inside the root (after resolving everything) and a maildir. */
static void expect_inside(struct fixture *f, const char *id)
{
	char dir[PATH_MAX], real[PATH_MAX], real_root[PATH_MAX], sub[2 * PATH_MAX];
	if (strcmp(id, "INBOX") == 0)
		snprintf(dir, sizeof(dir), "%s", f->root);
	else
		snprintf(dir, sizeof(dir), "%s/%s", f->root, id);
	assert_non_null(realpath(f->root, real_root));
	if (!realpath(dir, real))
		fail_msg("%s: %s", dir, strerror(errno));
	if (strcmp(id, "INBOX") != 0) {
		size_t n = strlen(real_root);
		assert_memory_equal(real, real_root, n);
		assert_int_equal(real[n], '/');
		assert_true(strlen(real) > n + 1);
	}
	for (int i = 0; i < 3; i++) {
		struct stat st;
		snprintf(sub, sizeof(sub), "%s/%s", real, (const char *[]){"cur", "new", "tmp"}[i]);
		assert_int_equal(stat(sub, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
	}
}

struct name_case {
	const char *components[3];
	size_t count;
	const char *maildirpp;
	const char *fs;
};

static const struct name_case name_cases[] = {
        {{".."}, 1, ".\\2e\\2e", "\\2e."},
        {{"."}, 1, ".\\2e", "\\2e"},
        {{".hidden"}, 1, ".\\2ehidden", ".hidden"},
        {{"a/b"}, 1, ".a\\2fb", "a\\2fb"},
        {{"a.b"}, 1, ".a\\2eb", "a.b"},
        {{"\\"}, 1, ".\\5c", "\\5c"},
        {{"\\2e"}, 1, ".\\5c2e", "\\5c2e"},
        {{"~x"}, 1, ".\\7ex", "\\7ex"},
        {{"x~12345678"}, 1, ".x~12345678", "x~12345678"},
        {{"a\x01"
          "b\x1f\x7f"},
         1,
         ".a\\01b\\1f\\7f",
         "a\\01b\\1f\\7f"},
        {{"Archive", "2019"}, 2, ".Archive.2019", "Archive/2019"},
        {{"..", ".."}, 2, ".\\2e\\2e.\\2e\\2e", "\\2e./\\2e."},
        {{"Über", "Ärger & Co"}, 2, ".Über.Ärger & Co", "Über/Ärger & Co"},
        {{"cur"}, 1, ".cur", "\\63ur"},
        {{"dovecot-keywords"}, 1, ".dovecot-keywords", "\\64ovecot-keywords"},
        {{"a", "tmp"}, 2, ".a.tmp", "a/\\74mp"},
        {{"INBOX", "Sub"}, 2, ".INBOX.Sub", "INBOX/Sub"},
        {{"inbox"}, 1, "INBOX", "INBOX"},
};

static void check_name_cases(const char *layout)
{
	bool fs = strcmp(layout, "fs") == 0;
	struct fixture *f = start(fs ? "names-fs" : "names-pp", layout, &alice);
	char ids[sizeof(name_cases) / sizeof(name_cases[0])][GW_SINK_ID_MAX];
	size_t n = sizeof(name_cases) / sizeof(name_cases[0]);
	for (size_t i = 0; i < n; i++) {
		const struct name_case *c = &name_cases[i];
		ensure(f, c->components, c->count, GW_ROLE_NONE, ids[i]);
		assert_string_equal(ids[i], fs ? c->fs : c->maildirpp);
		expect_inside(f, ids[i]);
		char decoded[2048], want[2048];
		assert_true(decode_id(ids[i], fs, decoded));
		join_components(c->components, c->count, want);
		if (strcmp(ids[i], "INBOX") != 0)
			assert_string_equal(decoded, want);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(ids[i], ids[j]);
	}
	/* Nothing was created beside the mailbox root. */
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s/%s", base_dir, fs ? "names-fs" : "names-pp");
	assert_int_equal(entries_in(parent), 1);
	stop(f);
}

static void test_hostile_names_maildirpp(void **unused)
{
	check_name_cases("maildirpp");
}

static void test_hostile_names_fs(void **unused)
{
	check_name_cases("fs");
}

static void long_name(void *arg)
{
	struct fixture *f = arg;
	char name[301], id[GW_SINK_ID_MAX], hex[65], want[GW_SINK_ID_MAX];
	memset(name, 'x', 300);
	name[300] = '\0';
	ensure(f, (const char *[]){name}, 1, GW_ROLE_NONE, id);
	sha256_hex(name, 300, hex);
	snprintf(want, sizeof(want), ".%.191s~%.8s", name, hex);
	assert_string_equal(id, want);
	expect_inside(f, id);
	char decoded[1024];
	assert_false(decode_id(id, false, decoded)); /* documented: not reversible */

	/* 150 two-byte characters: cut between characters, never inside one. */
	char utf8[301];
	for (int i = 0; i < 150; i++)
		memcpy(utf8 + 2 * i, "é", 2);
	utf8[300] = '\0';
	ensure(f, (const char *[]){utf8}, 1, GW_ROLE_NONE, id);
	sha256_hex(utf8, 300, hex);
	snprintf(want, sizeof(want), ".%.190s~%.8s", utf8, hex);
	assert_string_equal(id, want);

	/* Escapes are never split either: 100 dots are 300 bytes escaped. */
	char dots[101];
	memset(dots, '.', 100);
	dots[100] = '\0';
	ensure(f, (const char *[]){dots}, 1, GW_ROLE_NONE, id);
	assert_int_equal(strlen(id), 1 + 189 + 9); /* 63 escapes of 3 bytes */
	assert_memory_equal(id + 1 + 186, "\\2e~", 4);

	/* Two long components: the Maildir++ name would pass 255 bytes. */
	char a[181], b[181];
	memset(a, 'a', 180);
	memset(b, 'b', 180);
	a[180] = b[180] = '\0';
	ensure(f, (const char *[]){a, b}, 2, GW_ROLE_NONE, id);
	assert_int_equal(strlen(id), 255);
	assert_int_equal(id[246], '~');
	expect_inside(f, id);
}

static void test_long_names(void **unused)
{
	struct fixture *f = start("long", NULL, &alice);
	char *log = capture_stderr(long_name, f);
	assert_non_null(strstr(log, "a folder name component is too long for the file system; "
	                            "stored as \"xxxx"));
	assert_non_null(strstr(log, "a Maildir++ folder name is too long"));
	free(log);
	stop(f);
}

static void test_bad_paths(void **unused)
{
	struct fixture *f = start("bad", NULL, &alice);
	char id[GW_SINK_ID_MAX];
	void *folder = NULL;
	struct gw_folder_path p = {sizeof(p), 2, (const char *[]){"a", ""}, GW_ROLE_NONE};
	assert_int_equal(plugin->sink.ensure_folder(f->session, &p, &folder, id), GW_ERR_FOLDER);
	assert_string_equal(f->ctx.error, "folder path component 2 of 2 is empty");
	p.count = 0;
	assert_int_equal(plugin->sink.ensure_folder(f->session, &p, &folder, id), GW_ERR_FOLDER);
	assert_string_equal(f->ctx.error, "folder path without components");
	stop(f);
}

/* Random hostile names: distinct names give distinct ids, and decode back. */
static void test_no_collisions(void **unused)
{
	static const char *const atoms[] = {".",    "/", "\\",   "~",  "a",   "B", "é",
	                                    "\x01", " ", "\\2e", "2e", "cur", "%", "&-"};
	const size_t natoms = sizeof(atoms) / sizeof(atoms[0]);
	for (int layout = 0; layout < 2; layout++) {
		bool fs = layout == 1;
		struct fixture *f =
		        start(fs ? "random-fs" : "random-pp", fs ? "fs" : "maildirpp", &alice);
		uint32_t x = 12345;
		enum { N = 400 };
		static char names[N][64], ids[N][GW_SINK_ID_MAX];
		for (int i = 0; i < N; i++) {
			names[i][0] = '\0';
			do {
				x = x * 1664525u + 1013904223u;
				strcat(names[i], atoms[(x >> 16) % natoms]);
			} while (strlen(names[i]) < 20 && ((x >> 8) & 3) != 0);
			ensure(f, (const char *[]){names[i]}, 1, GW_ROLE_NONE, ids[i]);
			char decoded[256];
			assert_true(decode_id(ids[i], fs, decoded));
			if (strcasecmp(names[i], "INBOX") != 0)
				assert_string_equal(decoded, names[i]);
		}
		for (int i = 0; i < N; i++)
			for (int j = 0; j < i; j++)
				if (strcmp(names[i], names[j]) != 0)
					assert_string_not_equal(ids[i], ids[j]);
		char parent[PATH_MAX];
		snprintf(parent, sizeof(parent), "%s/%s", base_dir, fs ? "random-fs" : "random-pp");
		assert_int_equal(entries_in(parent), 1);
		stop(f);
	}
}

/* ---- sessions, lookup, flush ---- */

static void test_lookup_across_sessions(void **unused)
{
	struct fixture *f = start("lookup", NULL, &alice);
	char id[GW_SINK_ID_MAX], first[GW_SINK_ID_MAX], found_id[GW_SINK_ID_MAX];
	void *sent = ensure(f, (const char *[]){"Sent"}, 1, GW_ROLE_SENT, id);
	assert_string_equal(id, ".Sent");
	struct msg m;
	make_msg(&m, "Subject: s\r\n\r\nhi\r\n", 18, 1500000000, GW_FLAG_SEEN, NULL, 0, "abc123");
	append_ok(f, sent, &m, first);
	flush_ok(f);
	plugin->sink.close(f->session);
	f->session = NULL;

	/* A new session (a re-run after a crash) finds it by origin key. */
	assert_int_equal(plugin->sink.open(f->state, &f->ctx, &alice, &f->session), GW_OK);
	sent = ensure(f, (const char *[]){"Sent"}, 1, GW_ROLE_SENT, id);
	bool found = false;
	assert_int_equal(plugin->sink.lookup(f->session, sent, &m.item, &found, found_id), GW_OK);
	assert_true(found);
	assert_string_equal(found_id, first);

	struct msg other;
	make_msg(&other, "x", 1, 1, 0, NULL, 0, "abc12");
	assert_int_equal(plugin->sink.lookup(f->session, sent, &other.item, &found, found_id),
	                 GW_OK);
	assert_false(found);
	void *inbox = ensure(f, (const char *[]){"INBOX"}, 1, GW_ROLE_INBOX, id);
	assert_int_equal(plugin->sink.lookup(f->session, inbox, &m.item, &found, found_id), GW_OK);
	assert_false(found); /* another folder */

	/* Appending the same origin again writes nothing and returns the file. */
	char again[GW_SINK_ID_MAX];
	append_ok(f, sent, &m, again);
	assert_string_equal(again, first);
	char cur[PATH_MAX];
	snprintf(cur, sizeof(cur), "%s/.Sent/cur", f->root);
	assert_int_equal(entries_in(cur), 1);

	/* A message a crash left in new/ (another deliverer) is found too. */
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/.Sent/new/1.Gzz9.otherhost,S=1", f->root);
	FILE *fp = fopen(path, "w");
	fputc('x', fp);
	fclose(fp);
	plugin->sink.close(f->session);
	assert_int_equal(plugin->sink.open(f->state, &f->ctx, &alice, &f->session), GW_OK);
	sent = ensure(f, (const char *[]){"Sent"}, 1, GW_ROLE_SENT, id);
	make_msg(&other, "x", 1, 1, 0, NULL, 0, "zz9");
	assert_int_equal(plugin->sink.lookup(f->session, sent, &other.item, &found, found_id),
	                 GW_OK);
	assert_true(found);
	assert_string_equal(found_id, "1.Gzz9.otherhost,S=1");
	stop(f);
}

static void test_flush(void **unused)
{
	struct fixture *f = start("flush", "fs", &alice);
	char id[GW_SINK_ID_MAX];
	/* Nothing to do is fine. */
	flush_ok(f);
	void *deep = ensure(f, (const char *[]){"a", "b", "c"}, 3, GW_ROLE_NONE, id);
	assert_string_equal(id, "a/b/c");
	for (int i = 0; i < 20; i++) {
		struct msg m;
		char origin[16];
		snprintf(origin, sizeof(origin), "fl%d", i);
		make_msg(&m, "Subject: f\r\n\r\n", 14, 1400000000 + i, 0, NULL, 0, origin);
		append_ok(f, deep, &m, id);
	}
	/* Before flush nothing is in cur/: a message appears there only once its
	 * bytes are on disk. */
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/a/b/c/cur", f->root);
	assert_int_equal(entries_in(dir), 0);
	snprintf(dir, sizeof(dir), "%s/a/b/c/tmp", f->root);
	assert_int_equal(entries_in(dir), 20);
	flush_ok(f);
	snprintf(dir, sizeof(dir), "%s/a/b/c/cur", f->root);
	assert_int_equal(entries_in(dir), 20);
	snprintf(dir, sizeof(dir), "%s/a/b/c/tmp", f->root);
	assert_int_equal(entries_in(dir), 0);
	snprintf(dir, sizeof(dir), "%s/a/b/c/new", f->root);
	assert_int_equal(entries_in(dir), 0);
	/* Intermediate levels are plain directories, not maildirs. */
	snprintf(dir, sizeof(dir), "%s/a", f->root);
	assert_int_equal(entries_in(dir), 1);
	flush_ok(f);
	stop(f);
}

/* A new keyword reaches dovecot-keywords at flush, with the messages using it,
 * through a temporary file that does not outlive the flush. */
static void test_keywords_written_at_flush(void **unused)
{
	struct fixture *f = start("keywords-flush", NULL, &alice);
	char id[GW_SINK_ID_MAX], path[PATH_MAX], dir[2048];
	void *work = ensure(f, (const char *[]){"Work"}, 1, GW_ROLE_NONE, id);
	snprintf(dir, sizeof(dir), "%s/.Work", f->root);
	snprintf(path, sizeof(path), "%s/dovecot-keywords", dir);
	struct msg m;
	make_msg(&m, "x\r\n", 3, 1000000000, 0, (const char *[]){"$Label1"}, 1, "kf1");
	append_ok(f, work, &m, id);
	assert_int_equal(access(path, F_OK), -1); /* not before the flush */
	flush_ok(f);
	char *text = read_text(path);
	assert_string_equal(text, "0 $Label1\n");
	free(text);
	assert_int_equal(entries_in(dir), 5); /* cur new tmp dovecot-keywords maildirfolder */
	free(file_of(dir, id, path, sizeof(path)));
	stop(f);
}

/* More than the write-back interval (32 MiB) before a flush: the background
 * syncs start the disk early but deliver nothing; flush still decides. */
static void test_writeback_keeps_the_protocol(void **unused)
{
	struct fixture *f = start("writeback", NULL, &alice);
	char id[GW_SINK_ID_MAX];
	void *inbox = ensure(f, (const char *[]){"INBOX"}, 1, GW_ROLE_NONE, id);
	enum { COUNT = 40, SIZE = 1024 * 1024 };
	unsigned char *bytes = malloc(SIZE);
	struct msg *m = calloc(COUNT, sizeof(*m));
	char(*ids)[GW_SINK_ID_MAX] = calloc(COUNT, GW_SINK_ID_MAX);
	for (int i = 0; i < COUNT; i++) {
		char origin[16];
		snprintf(origin, sizeof(origin), "wb%d", i);
		memset(bytes, 'a' + i % 26, SIZE);
		memcpy(bytes, "Subject: wb\r\n\r\n", 15);
		/* Each message its own buffer: the sink may keep nothing after append. */
		unsigned char *copy = malloc(SIZE);
		memcpy(copy, bytes, SIZE);
		make_msg(&m[i], copy, SIZE, 1500000000 + i, 0, NULL, 0, strdup(origin));
		append_ok(f, inbox, &m[i], ids[i]);
	}
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/cur", f->root);
	assert_int_equal(entries_in(dir), 0);
	flush_ok(f);
	assert_int_equal(entries_in(dir), COUNT);
	for (int i = 0; i < COUNT; i++) {
		expect_exact(f, f->root, ids[i], &m[i]);
		free((void *)m[i].message.data);
		free((char *)m[i].item.origin_key);
	}
	free(ids);
	free(m);
	free(bytes);
	stop(f);
}

/* flush_begin takes what was appended so far; appends after it belong to the
 * next flush, and flush_wait reports the first. The keyword table reaches the
 * disk as it was at flush_begin. */
static void test_flush_in_background(void **unused)
{
	struct fixture *f = start("background", NULL, &alice);
	char dir[2048], path[PATH_MAX];
	char(*ids)[GW_SINK_ID_MAX] = calloc(20, GW_SINK_ID_MAX);
	void *work = ensure(f, (const char *[]){"Work"}, 1, GW_ROLE_NONE, ids[0]);
	snprintf(dir, sizeof(dir), "%s/.Work", f->root);
	struct msg m[20];
	char origins[20][8], bodies[20][32];
	static const char *const first_kw[] = {"$First"}, *const second_kw[] = {"$Second"};
	for (int i = 0; i < 20; i++) {
		snprintf(origins[i], sizeof(origins[i]), "bg%d", i);
		int n = snprintf(bodies[i], sizeof(bodies[i]), "Subject: %d\r\n\r\nbody %d\r\n", i,
		                 i);
		make_msg(&m[i], bodies[i], (size_t)n, 1400000000 + i, 0,
		         i < 10 ? first_kw : second_kw, 1, origins[i]);
	}
	for (int i = 0; i < 10; i++)
		append_ok(f, work, &m[i], ids[i]);
	assert_int_equal(plugin->sink.flush_begin(f->session), GW_OK);
	for (int i = 10; i < 20; i++)
		append_ok(f, work, &m[i], ids[i]);
	gw_status rc = plugin->sink.flush_wait(f->session);
	if (rc != GW_OK)
		fail_msg("flush_wait: %s", f->ctx.error);
	char sub[2100];
	snprintf(sub, sizeof(sub), "%s/cur", dir);
	assert_int_equal(entries_in(sub), 10);
	snprintf(sub, sizeof(sub), "%s/tmp", dir);
	assert_int_equal(entries_in(sub), 10);
	for (int i = 0; i < 10; i++)
		expect_exact(f, dir, ids[i], &m[i]);
	snprintf(path, sizeof(path), "%s/dovecot-keywords", dir);
	char *text = read_text(path);
	assert_string_equal(text, "0 $First\n");
	free(text);

	/* The next flush delivers the rest, with the grown table. */
	flush_ok(f);
	snprintf(sub, sizeof(sub), "%s/cur", dir);
	assert_int_equal(entries_in(sub), 20);
	for (int i = 10; i < 20; i++) {
		expect_exact(f, dir, ids[i], &m[i]);
		char *letters = file_of(dir, ids[i], path, sizeof(path));
		assert_string_equal(letters, "b");
		free(letters);
	}
	snprintf(path, sizeof(path), "%s/dovecot-keywords", dir);
	text = read_text(path);
	assert_string_equal(text, "0 $First\n1 $Second\n");
	free(text);

	/* A flush begun and never waited for is landed by close (nothing leaks). */
	struct msg late;
	make_msg(&late, "x\r\n", 3, 1, 0, NULL, 0, "bglate");
	append_ok(f, work, &late, ids[0]);
	assert_int_equal(plugin->sink.flush_begin(f->session), GW_OK);
	free(ids);
	stop(f);
	snprintf(sub, sizeof(sub), "%s/cur", dir);
	assert_int_equal(entries_in(sub), 21);
}

/* A background flush that fails says why through flush_wait, delivers nothing
 * more, and removes the batch's tmp/ files; the batch appended meanwhile is
 * untouched. */
static void test_flush_in_background_fails(void **unused)
{
	struct fixture *f = start("background-fails", NULL, &alice);
	char id[GW_SINK_ID_MAX], dir[2048], sub[2100];
	void *work = ensure(f, (const char *[]){"Work"}, 1, GW_ROLE_NONE, id);
	snprintf(dir, sizeof(dir), "%s/.Work", f->root);
	struct msg first, second;
	make_msg(&first, "Subject: 1\r\n\r\n", 14, 1, 0, NULL, 0, "bgf1");
	make_msg(&second, "Subject: 2\r\n\r\n", 14, 2, 0, NULL, 0, "bgf2");
	append_ok(f, work, &first, id);
	/* cur/ gone: the move into it fails. */
	snprintf(sub, sizeof(sub), "%s/cur", dir);
	assert_int_equal(rmdir(sub), 0);
	assert_int_equal(plugin->sink.flush_begin(f->session), GW_OK);
	append_ok(f, work, &second, id);
	assert_int_equal(plugin->sink.flush_wait(f->session), GW_ERR_FOLDER);
	char expected[4400];
	snprintf(expected, sizeof(expected), "cannot move %s/tmp/", dir);
	assert_memory_equal(f->ctx.error, expected, strlen(expected));
	assert_non_null(strstr(f->ctx.error, ": No such file or directory"));
	snprintf(sub, sizeof(sub), "%s/tmp", dir);
	assert_int_equal(entries_in(sub), 1); /* the second message's; the first's went */
	stop(f);
	assert_int_equal(entries_in(sub), 0);
}

/* Appended but never flushed: nothing delivered, nothing left behind. */
static void test_close_without_flush(void **unused)
{
	struct fixture *f = start("abandon", NULL, &alice);
	char id[GW_SINK_ID_MAX], found_id[GW_SINK_ID_MAX];
	void *inbox = ensure(f, (const char *[]){"INBOX"}, 1, GW_ROLE_INBOX, id);
	struct msg m;
	make_msg(&m, "Subject: a\r\n\r\n", 14, 1, 0, NULL, 0, "ab1");
	append_ok(f, inbox, &m, id);
	/* Within the batch the origin is known: appending it again writes nothing. */
	bool found = false;
	assert_int_equal(plugin->sink.lookup(f->session, inbox, &m.item, &found, found_id), GW_OK);
	assert_true(found);
	assert_string_equal(found_id, id);
	char again[GW_SINK_ID_MAX];
	append_ok(f, inbox, &m, again);
	assert_string_equal(again, id);
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/tmp", f->root);
	assert_int_equal(entries_in(dir), 1);

	plugin->sink.close(f->session);
	assert_int_equal(entries_in(dir), 0);
	snprintf(dir, sizeof(dir), "%s/cur", f->root);
	assert_int_equal(entries_in(dir), 0);
	assert_int_equal(plugin->sink.open(f->state, &f->ctx, &alice, &f->session), GW_OK);
	inbox = ensure(f, (const char *[]){"INBOX"}, 1, GW_ROLE_INBOX, id);
	assert_int_equal(plugin->sink.lookup(f->session, inbox, &m.item, &found, found_id), GW_OK);
	assert_false(found);
	stop(f);
}

/* Files a killed run left in tmp/ are removed when the folder is opened again. */
static void test_stale_tmp_removed(void **unused)
{
	struct fixture *f = start("stale", NULL, &alice);
	char host[256] = "", path[PATH_MAX], id[GW_SINK_ID_MAX];
	plugin->sink.close(f->session);
	f->session = NULL;
	gethostname(host, sizeof(host) - 1);
	for (char *p = host; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
			*p = '_';
	host[64] = '\0';
	pid_t child = fork();
	if (child == 0)
		_exit(0);
	waitpid(child, NULL, 0); /* a pid that is surely gone */
	const char *names[3];
	char dead[300], alive[300];
	snprintf(dead, sizeof(dead), "1700000000.P%ldQ3.%s", (long)child, host);
	snprintf(alive, sizeof(alive), "1700000000.P%ldQ3.%s", (long)getppid(), host);
	names[0] = dead;
	names[1] = alive;
	names[2] = "1700000000.M1P2.otherdeliverer";
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/tmp/%s", f->root, names[i]);
		FILE *fp = fopen(path, "w");
		assert_non_null(fp);
		fclose(fp);
	}
	assert_int_equal(plugin->sink.open(f->state, &f->ctx, &alice, &f->session), GW_OK);
	ensure(f, (const char *[]){"INBOX"}, 1, GW_ROLE_INBOX, id);
	snprintf(path, sizeof(path), "%s/tmp/%s", f->root, dead);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/tmp/%s", f->root, alive);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/tmp", f->root);
	assert_int_equal(entries_in(path), 2);
	stop(f);
}

/* ---- options ---- */

static void test_path_template(void **unused)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/tpl/{domain}/{user}/{username}", base_dir);
	configure(f, path, NULL, "false");
	assert_int_equal(plugin->sink.init(gw_host_table(), &f->ctx, f->config, &f->state), GW_OK);
	const struct gw_mailbox evil = {
	        .struct_size = sizeof(evil), .email = "../evil@ex/ample.org", .username = ".."};
	assert_int_equal(plugin->sink.open(f->state, &f->ctx, &evil, &f->session), GW_OK);
	char want[PATH_MAX];
	snprintf(want, sizeof(want), "%s/tpl/ex_ample.org/_._evil/_./cur", base_dir);
	struct stat st;
	assert_int_equal(stat(want, &st), 0);
	plugin->sink.close(f->session);
	f->session = NULL;

	const struct gw_mailbox nouser = {
	        .struct_size = sizeof(nouser), .email = "bob@example.org", .username = ""};
	assert_int_equal(plugin->sink.open(f->state, &f->ctx, &nouser, &f->session), GW_ERR_CONFIG);
	assert_string_equal(f->ctx.error, "path: {username} is empty for this mailbox");
	f->session = NULL;
	stop(f);

	f = calloc(1, sizeof(*f));
	configure(f, "/tmp/{email}/{foo}", NULL, NULL);
	assert_int_equal(plugin->sink.init(gw_host_table(), &f->ctx, f->config, &f->state),
	                 GW_ERR_CONFIG);
	assert_string_equal(f->ctx.error, "path: unknown placeholder {foo} (known: {email}, "
	                                  "{user}, {domain}, {username})");
	gw_optstore_free(f->store);
	free(f->config);
	free(f);
}

static void test_descriptor(void **unused)
{
	assert_string_equal(plugin->desc.name, "maildir");
	assert_true(plugin->desc.capabilities & GW_CAP_LOOKUP);
	assert_true(plugin->desc.capabilities & GW_CAP_KEYWORDS);
	assert_true(find_option("path")->flags & GW_OPT_REQUIRED);
	assert_string_equal(find_option("layout")->default_value, "maildirpp");
	assert_string_equal(find_option("fsync")->default_value, "true");
	assert_non_null(plugin->sink.lookup);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_descriptor),
	        cmocka_unit_test(test_byte_exact),
	        cmocka_unit_test(test_spooled_file_copied_in_kernel),
	        cmocka_unit_test(test_flags_sorted),
	        cmocka_unit_test(test_keywords),
	        cmocka_unit_test(test_mtime),
	        cmocka_unit_test(test_hostile_names_maildirpp),
	        cmocka_unit_test(test_hostile_names_fs),
	        cmocka_unit_test(test_long_names),
	        cmocka_unit_test(test_bad_paths),
	        cmocka_unit_test(test_no_collisions),
	        cmocka_unit_test(test_lookup_across_sessions),
	        cmocka_unit_test(test_flush),
	        cmocka_unit_test(test_writeback_keeps_the_protocol),
	        cmocka_unit_test(test_keywords_written_at_flush),
	        cmocka_unit_test(test_flush_in_background),
	        cmocka_unit_test(test_flush_in_background_fails),
	        cmocka_unit_test(test_close_without_flush),
	        cmocka_unit_test(test_stale_tmp_removed),
	        cmocka_unit_test(test_path_template),
	};
	return cmocka_run_group_tests(tests, load_plugin, unload_plugin);
}
