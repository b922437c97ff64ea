/* The mailbox list: RFC 4180 details, Microsoft's header, bad rows reported
 * with their exact place and skipped, duplicates, secret references. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "diag.h"
#include "log.h"
#include "util.h"

#define CSV_DIR GW_TEST_DATA_DIR "/csv"

/* Every diagnostic, formatted, one per line. Caller frees. */
static char *diag_text(const struct gw_diag *d)
{
	struct gw_buf b = {0};
	for (size_t i = 0; i < d->count; i++) {
		char *line = gw_diag_format(&d->entries[i]);
		gw_buf_printf(&b, "%s\n", line);
		free(line);
	}
	return b.data != NULL ? b.data : gw_xstrdup("");
}

struct parsed {
	struct gw_mailbox_list list;
	struct gw_diag diag;
	bool ok;
	char *errors;
};

static struct parsed *parse(const char *text)
{
	struct parsed *p = gw_xcalloc(1, sizeof(*p));
	p->ok = gw_csv_parse("users.csv", text, strlen(text), &p->list, &p->diag);
	p->errors = diag_text(&p->diag);
	return p;
}

static void release(struct parsed *p)
{
	gw_mailbox_list_free(&p->list);
	gw_diag_free(&p->diag);
	free(p->errors);
	free(p);
}

static const struct gw_mailbox *mbx(const struct parsed *p, size_t i)
{
	assert_true(i < p->list.count);
	return &p->list.items[i].mbx;
}

static void assert_row(const struct parsed *p, size_t i, unsigned line, const char *email,
                       const char *username, const char *password)
{
	const struct gw_mailbox *m = mbx(p, i);
	assert_int_equal(m->struct_size, sizeof(struct gw_mailbox));
	assert_int_equal(p->list.items[i].line, line);
	assert_string_equal(m->email, email);
	assert_string_equal(m->username, username);
	if (password == NULL)
		assert_null(m->password);
	else
		assert_string_equal(m->password, password);
}

static void test_plain_lf(void **state)
{
	(void)state;
	struct parsed *p = parse("EmailAddress,UserName,Password\n"
	                         "ann@example.org,ann,pw-ann\n"
	                         "bob@example.org,bob.b,pw-bob\n");
	assert_true(p->ok);
	assert_string_equal(p->errors, "");
	assert_int_equal(p->list.count, 2);
	assert_row(p, 0, 2, "ann@example.org", "ann", "pw-ann");
	assert_row(p, 1, 3, "bob@example.org", "bob.b", "pw-bob");
	assert_int_equal(mbx(p, 0)->extra_count, 0);
	assert_int_equal(p->list.extra_count, 0);
	release(p);
}

static void test_bom_and_crlf(void **state)
{
	(void)state;
	struct parsed *p = parse("\xEF\xBB\xBF"
	                         "EmailAddress,UserName,Password\r\n"
	                         "ann@example.org,ann,pw-ann\r\n"
	                         "bob@example.org,bob,pw-bob");
	assert_true(p->ok);
	assert_string_equal(p->errors, "");
	assert_int_equal(p->list.count, 2);
	assert_row(p, 0, 2, "ann@example.org", "ann", "pw-ann");
	assert_row(p, 1, 3, "bob@example.org", "bob", "pw-bob");
	release(p);
}

static void test_lone_cr_is_data(void **state)
{
	(void)state;
	struct parsed *p = parse("EmailAddress,UserName,Password\n"
	                         "ann@example.org,an\rn,pw\n");
	assert_true(p->ok);
	assert_int_equal(p->list.count, 1);
	assert_row(p, 0, 2, "ann@example.org", "an\rn", "pw");
	release(p);
}

static void test_header_case_and_order(void **state)
{
	(void)state;
	struct parsed *p = parse("password, EMAILADDRESS ,username\n"
	                         "pw-ann,ann@example.org,ann\n");
	assert_true(p->ok);
	assert_string_equal(p->errors, "");
	assert_int_equal(p->list.count, 1);
	assert_row(p, 0, 2, "ann@example.org", "ann", "pw-ann");
	release(p);
}

static void test_quoted_fields(void **state)
{
	(void)state;
	struct parsed *p = parse("EmailAddress,UserName,Password\n"
	                         "\"ann@example.org\",\"Ann, the first\",\"say \"\"hi\"\"\"\n"
	                         "bob@example.org,\"two\r\nlines\nthree\",\"\"\n"
	                         "carol@example.org,\"\",\",\"\n");
	assert_true(p->ok);
	assert_string_equal(p->errors, "");
	assert_int_equal(p->list.count, 3);
	assert_row(p, 0, 2, "ann@example.org", "Ann, the first", "say \"hi\"");
	/* A quoted line break is data, kept byte for byte; an empty password is none. */
	assert_row(p, 1, 3, "bob@example.org", "two\r\nlines\nthree", NULL);
	/* The row after a three-line field starts on line 6. */
	assert_row(p, 2, 6, "carol@example.org", "", ",");
	release(p);
}

static void test_blank_and_trailing_lines(void **state)
{
	(void)state;
	struct parsed *p = parse("\nEmailAddress,UserName,Password\n\n"
	                         "ann@example.org,ann,pw1\r\n\r\n"
	                         "bob@example.org,bob,pw2\n\n\n");
	assert_true(p->ok);
	assert_string_equal(p->errors, "");
	assert_int_equal(p->list.count, 2);
	assert_row(p, 0, 4, "ann@example.org", "ann", "pw1");
	assert_row(p, 1, 6, "bob@example.org", "bob", "pw2");
	release(p);
}

static void test_header_only(void **state)
{
	(void)state;
	struct parsed *p = parse("EmailAddress,UserName,Password\r\n");
	assert_true(p->ok);
	assert_string_equal(p->errors, "");
	assert_int_equal(p->list.count, 0);
	release(p);
}

static void test_missing_password_column(void **state)
{
	(void)state;
	struct parsed *p = parse("UserName,EmailAddress\nann,ann@example.org\n");
	assert_true(p->ok);
	assert_string_equal(p->errors, "");
	assert_row(p, 0, 2, "ann@example.org", "ann", NULL);
	release(p);
}

static void test_missing_username_column(void **state)
{
	(void)state;
	struct parsed *p = parse("EmailAddress\nann@example.org\n");
	assert_true(p->ok);
	assert_string_equal(p->errors, "");
	assert_row(p, 0, 2, "ann@example.org", "", NULL);
	release(p);
}

static void test_missing_email_column_is_fatal(void **state)
{
	(void)state;
	struct parsed *p = parse("\n\nMail,UserName,Password\nann@example.org,ann,pw\n");
	assert_false(p->ok);
	assert_string_equal(p->errors,
	                    "users.csv:3:1: error: the header has no EmailAddress column (found: "
	                    "Mail, UserName, Password); the first line must name the columns, e.g. "
	                    "EmailAddress,UserName,Password\n");
	assert_int_equal(p->list.count, 0);
	release(p);
}

static void test_data_without_header_is_fatal(void **state)
{
	(void)state;
	struct parsed *p = parse("ann@example.org,ann,pw\n");
	assert_false(p->ok);
	assert_string_equal(p->errors,
	                    "users.csv:1:1: error: the header has no EmailAddress column (found: "
	                    "ann@example.org, ann, pw); the first line must name the columns, e.g. "
	                    "EmailAddress,UserName,Password\n");
	release(p);
}

static void test_empty_file_is_fatal(void **state)
{
	(void)state;
	static const char *const empties[] = {"", "\xEF\xBB\xBF", "\n\r\n\n"};
	for (size_t i = 0; i < 3; i++) {
		struct parsed *p = parse(empties[i]);
		assert_false(p->ok);
		assert_string_equal(p->errors, "users.csv: error: the file is empty (expected the "
		                               "header EmailAddress,UserName,Password)\n");
		release(p);
	}
}

static void test_bad_headers_are_fatal(void **state)
{
	(void)state;
	static const struct {
		const char *csv;
		const char *error;
	} cases[] = {
	        {"EmailAddress,UserName,emailaddress\n",
	         "users.csv:1:1: error: column EmailAddress appears twice in the header\n"},
	        {"EmailAddress,Host,host\n",
	         "users.csv:1:1: error: column host appears twice in the header\n"},
	        {"EmailAddress,UserName,Password,\n",
	         "users.csv:1:1: error: column 4 of the header has no name\n"},
	        {"EmailAddress,User\xC3Name\n",
	         "users.csv:1:1: error: column 2 of the header is not valid UTF-8\n"},
	        {"EmailAddress,\"UserName\n",
	         "users.csv:1:14: error: quoted field is never closed (the quote opened here has "
	         "no closing quote)\n"},
	        {"Email\"Address\n", "users.csv:1:6: error: stray '\"' in an unquoted field (quote "
	                             "the whole field and double the quote)\n"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct parsed *p = parse(cases[i].csv);
		assert_false(p->ok);
		assert_string_equal(p->errors, cases[i].error);
		assert_int_equal(p->list.count, 0);
		assert_int_equal(p->list.extra_count, 0);
		release(p);
	}
}

static void test_extra_columns_kept_in_order(void **state)
{
	(void)state;
	struct parsed *p = parse("SourceHost,EmailAddress,UserName,Quota,Password,Note\n"
	                         "imap1.example.org,ann@example.org,ann,10GB,pw,\"a, b\"\n"
	                         "imap2.example.org,bob@example.org,bob,,pw2,\n");
	assert_true(p->ok);
	assert_string_equal(p->errors, "");
	assert_int_equal(p->list.extra_count, 3);
	assert_string_equal(p->list.extra_names[0], "SourceHost");
	assert_string_equal(p->list.extra_names[1], "Quota");
	assert_string_equal(p->list.extra_names[2], "Note");
	const struct gw_mailbox *ann = mbx(p, 0);
	assert_int_equal(ann->extra_count, 3);
	assert_string_equal(ann->extra_names[1], "Quota");
	assert_string_equal(ann->extra_values[0], "imap1.example.org");
	assert_string_equal(ann->extra_values[1], "10GB");
	assert_string_equal(ann->extra_values[2], "a, b");
	const struct gw_mailbox *bob = mbx(p, 1);
	assert_string_equal(bob->extra_values[0], "imap2.example.org");
	assert_string_equal(bob->extra_values[1], "");
	assert_string_equal(bob->extra_values[2], "");
	/* Plugins read them through the host, by header name in any case. */
	const struct gw_host *host = gw_host_table();
	assert_string_equal(host->mailbox_field(bob, "sourcehost"), "imap2.example.org");
	assert_null(host->mailbox_field(bob, "EmailAddress"));
	release(p);
}

static void test_wrong_field_count(void **state)
{
	(void)state;
	struct parsed *p = parse("EmailAddress,UserName,Password\n"
	                         "ann@example.org,ann,pw\n"
	                         "bob@example.org,bob\n"
	                         "carol@example.org,carol,pw,extra\n"
	                         "dave@example.org,dave,pw\n");
	assert_true(p->ok);
	assert_string_equal(p->errors,
	                    "users.csv:3:1: error: row has 2 fields, the header has 3\n"
	                    "users.csv:4:1: error: row has 4 fields, the header has 3\n");
	assert_int_equal(p->list.count, 2);
	assert_row(p, 0, 2, "ann@example.org", "ann", "pw");
	assert_row(p, 1, 5, "dave@example.org", "dave", "pw");
	release(p);
}

static void test_bad_email_addresses(void **state)
{
	(void)state;
	struct parsed *p = parse("EmailAddress,UserName\n"
	                         ",empty\n"
	                         "no-at-sign,a\n"
	                         "two@at@example.org,b\n"
	                         "\" ann@example.org\",c\n"
	                         "\"ann @example.org\",d\n"
	                         "\"ann@example.org\t\",e\n"
	                         "@example.org,f\n"
	                         "ann@,g\n"
	                         "ok@example.org,h\n");
	assert_true(p->ok);
	assert_string_equal(
	        p->errors,
	        "users.csv:2:1: error: EmailAddress is empty\n"
	        "users.csv:3:1: error: EmailAddress 'no-at-sign' must contain exactly one '@'\n"
	        "users.csv:4:1: error: EmailAddress 'two@at@example.org' must contain exactly one "
	        "'@'\n"
	        "users.csv:5:1: error: EmailAddress ' ann@example.org' contains whitespace\n"
	        "users.csv:6:1: error: EmailAddress 'ann @example.org' contains whitespace\n"
	        "users.csv:7:1: error: EmailAddress 'ann@example.org\t' contains whitespace\n"
	        "users.csv:8:1: error: EmailAddress '@example.org' needs a name before and a "
	        "domain after the '@'\n"
	        "users.csv:9:1: error: EmailAddress 'ann@' needs a name before and a domain after "
	        "the '@'\n");
	assert_int_equal(p->list.count, 1);
	assert_row(p, 0, 10, "ok@example.org", "h", NULL);
	release(p);
}

static void test_unterminated_quote_stops_at_opening_quote(void **state)
{
	(void)state;
	struct parsed *p = parse("EmailAddress,UserName,Password\n"
	                         "ann@example.org,ann,pw\n"
	                         "bob@example.org,\"bob,pw\n"
	                         "carol@example.org,carol,pw\n");
	assert_true(p->ok);
	assert_string_equal(p->errors, "users.csv:3:17: error: quoted field is never closed (the "
	                               "quote opened here has no closing quote)\n");
	/* Nothing after the quote can be trusted: carol is not guessed into the list. */
	assert_int_equal(p->list.count, 1);
	assert_row(p, 0, 2, "ann@example.org", "ann", "pw");
	release(p);
}

static void test_stray_quote_in_unquoted_field(void **state)
{
	(void)state;
	/* Columns count characters: "Jürgen" is 6 wide although 7 bytes long. */
	struct parsed *p = parse("EmailAddress,UserName,Password\n"
	                         "j@example.org,Jürgen \"J\",pw\n"
	                         "ann@example.org,ann,pw\n");
	assert_true(p->ok);
	assert_string_equal(p->errors, "users.csv:2:22: error: stray '\"' in an unquoted field "
	                               "(quote the whole field and double the quote)\n");
	assert_int_equal(p->list.count, 1);
	assert_row(p, 0, 3, "ann@example.org", "ann", "pw");
	release(p);
}

static void test_text_after_closing_quote(void **state)
{
	(void)state;
	struct parsed *p = parse("EmailAddress,UserName,Password\n"
	                         "ann@example.org,\"ann\"x,pw\n"
	                         "bob@example.org,bob,pw\n");
	assert_true(p->ok);
	assert_string_equal(p->errors, "users.csv:2:22: error: unexpected character after the "
	                               "closing quote of a field\n");
	assert_int_equal(p->list.count, 1);
	assert_row(p, 0, 3, "bob@example.org", "bob", "pw");
	release(p);
}

static void test_invalid_utf8(void **state)
{
	(void)state;
	struct parsed *p = parse("EmailAddress,UserName,Password,Host\n"
	                         "ann@example.org,J\xFCrgen,pw,h\n"         /* Latin-1 ü */
	                         "bob@example.org,bob,pw,\xC0\xAF\n"        /* overlong '/' */
	                         "carol@example.org,carol,\xED\xA0\x80,h\n" /* surrogate */
	                         "dave@example.org,d\xC3\xBCrgen,pw,h\n");
	assert_true(p->ok);
	assert_string_equal(p->errors, "users.csv:2:1: error: UserName is not valid UTF-8\n"
	                               "users.csv:3:1: error: Host is not valid UTF-8\n"
	                               "users.csv:4:1: error: Password is not valid UTF-8\n");
	assert_int_equal(p->list.count, 1);
	assert_row(p, 0, 5, "dave@example.org", "d\xC3\xBCrgen", "pw");
	release(p);
}

static void test_duplicates_are_errors_for_the_second(void **state)
{
	(void)state;
	struct parsed *p = parse("EmailAddress,UserName,Password\n"
	                         "ann@example.org,ann,pw1\n"
	                         "bob@example.org,bob,pw2\n"
	                         "Ann@Example.ORG,ann2,pw3\n"
	                         "bob@example.org,bob3,pw4\n"
	                         "ann@example.org,ann4,pw5\n");
	assert_true(p->ok);
	assert_string_equal(p->errors,
	                    "users.csv:4:1: error: duplicate EmailAddress 'Ann@Example.ORG' (first "
	                    "listed on line 2)\n"
	                    "users.csv:5:1: error: duplicate EmailAddress 'bob@example.org' (first "
	                    "listed on line 3)\n"
	                    "users.csv:6:1: error: duplicate EmailAddress 'ann@example.org' (first "
	                    "listed on line 2)\n");
	assert_int_equal(p->list.count, 2);
	assert_row(p, 0, 2, "ann@example.org", "ann", "pw1");
	assert_row(p, 1, 3, "bob@example.org", "bob", "pw2");
	release(p);
}

static void test_many_rows_and_duplicates(void **state)
{
	(void)state;
	struct gw_buf csv = {0};
	gw_buf_puts(&csv, "EmailAddress,UserName,Password\n");
	for (int i = 0; i < 20000; i++)
		gw_buf_printf(&csv, "user%05d@example.org,u%d,pw%05d\n", i, i, i);
	gw_buf_puts(&csv, "USER12345@example.org,again,pw\n");
	struct parsed *p = parse(csv.data);
	gw_buf_free(&csv);
	assert_true(p->ok);
	assert_string_equal(p->errors, "users.csv:20002:1: error: duplicate EmailAddress "
	                               "'USER12345@example.org' (first listed on line 12347)\n");
	assert_int_equal(p->list.count, 20000);
	assert_row(p, 19999, 20001, "user19999@example.org", "u19999", "pw19999");
	release(p);
}

static void test_secret_references(void **state)
{
	(void)state;
	gw_log_clear_secrets();
	setenv("GW_TEST_CSV_PW", "env-password-1", 1);
	unsetenv("GW_TEST_CSV_MISSING");
	struct parsed *p = parse("EmailAddress,UserName,Password\n"
	                         "ann@example.org,ann,${GW_TEST_CSV_PW}\n"
	                         "bob@example.org,bob,${file:" CSV_DIR "/secret.txt}\n"
	                         "carol@example.org,carol,${GW_TEST_CSV_MISSING}\n"
	                         "dave@example.org,dave,${file:" CSV_DIR "/no-such-file}\n"
	                         "eve@example.org,eve,$${NOT_A_REFERENCE}\n"
	                         "frank@example.org,frank,literal-pw\n");
	assert_true(p->ok);
	assert_string_equal(p->errors,
	                    "users.csv:4:1: error: Password: environment variable "
	                    "GW_TEST_CSV_MISSING is not set\n"
	                    "users.csv:5:1: error: Password: cannot read secret file " CSV_DIR
	                    "/no-such-file: No such file or directory\n");
	assert_int_equal(p->list.count, 4);
	assert_row(p, 0, 2, "ann@example.org", "ann", "env-password-1");
	assert_row(p, 1, 3, "bob@example.org", "bob", "hunter2-from-file");
	assert_row(p, 2, 6, "eve@example.org", "eve", "${NOT_A_REFERENCE}");
	assert_row(p, 3, 7, "frank@example.org", "frank", "literal-pw");
	/* Every password, literal or resolved, is now masked in any log line. */
	char *masked = gw_log_redact("env-password-1 hunter2-from-file literal-pw");
	assert_string_equal(masked, "*** *** ***");
	free(masked);
	release(p);
	gw_log_clear_secrets();
}

static void test_load_file_with_bom_crlf_and_extras(void **state)
{
	(void)state;
	struct gw_mailbox_list list;
	struct gw_diag diag = {0};
	assert_true(gw_csv_load(CSV_DIR "/users_bom_crlf.csv", &list, &diag));
	assert_int_equal(diag.count, 0);
	assert_int_equal(list.count, 3);
	assert_int_equal(list.extra_count, 1);
	assert_string_equal(list.extra_names[0], "SourceHost");
	assert_string_equal(list.items[0].mbx.password, "pa,ss\"word");
	assert_string_equal(list.items[0].mbx.extra_values[0], "imap1.example.org");
	assert_string_equal(list.items[1].mbx.email, "bob@example.org");
	assert_null(list.items[1].mbx.password);
	assert_string_equal(list.items[1].mbx.extra_values[0], "imap2.example.org");
	assert_string_equal(list.items[2].mbx.username, "Carol\r\nSmith");
	assert_int_equal(list.items[2].line, 4);
	gw_mailbox_list_free(&list);
	assert_int_equal(list.count, 0);
	assert_null(list.items);
	gw_diag_free(&diag);
	gw_log_clear_secrets();
}

static void test_load_file_with_bad_rows(void **state)
{
	(void)state;
	struct gw_mailbox_list list;
	struct gw_diag diag = {0};
	assert_true(gw_csv_load(CSV_DIR "/bad_rows.csv", &list, &diag));
	char *errors = diag_text(&diag);
	assert_string_equal(errors, CSV_DIR
	                    "/bad_rows.csv:3:1: error: EmailAddress 'not-an-email' must "
	                    "contain exactly one '@'\n" CSV_DIR
	                    "/bad_rows.csv:4:1: error: row has 2 fields, the header has "
	                    "3\n" CSV_DIR "/bad_rows.csv:6:1: error: duplicate EmailAddress "
	                    "'ANN@example.org' (first listed on line 2)\n" CSV_DIR
	                    "/bad_rows.csv:7:20: error: stray '\"' in an unquoted field "
	                    "(quote the whole field and double the quote)\n");
	assert_int_equal(diag.errors, 4);
	assert_int_equal(list.count, 3);
	assert_string_equal(list.items[0].mbx.email, "ann@example.org");
	assert_string_equal(list.items[1].mbx.email, "carol@example.org");
	assert_string_equal(list.items[1].mbx.password, "thr\"ee");
	assert_string_equal(list.items[2].mbx.email, "eve@example.org");
	assert_int_equal(list.items[2].line, 9);
	free(errors);
	gw_mailbox_list_free(&list);
	gw_diag_free(&diag);
	gw_log_clear_secrets();
}

static void test_load_missing_file(void **state)
{
	(void)state;
	struct gw_mailbox_list list;
	struct gw_diag diag = {0};
	assert_false(gw_csv_load(CSV_DIR "/does-not-exist.csv", &list, &diag));
	char *errors = diag_text(&diag);
	assert_string_equal(errors, CSV_DIR "/does-not-exist.csv: error: cannot open the mailbox "
	                                    "list: No such file or directory\n");
	assert_int_equal(list.count, 0);
	free(errors);
	gw_diag_free(&diag);
}

static void test_inline_mailboxes(void **state)
{
	(void)state;
	struct parsed *p = parse("EmailAddress,UserName,Password,Host\n"
	                         "ann@example.org,ann,pw,h1\n");
	struct gw_diag diag = {0};
	setenv("GW_TEST_CSV_INLINE", "inline-secret", 1);
	unsetenv("GW_TEST_CSV_MISSING");
	assert_true(gw_mailbox_list_add(&p->list, "bob@example.org", NULL, "${GW_TEST_CSV_INLINE}",
	                                "profile.yaml", 12, &diag));
	assert_true(gw_mailbox_list_add(&p->list, "carol@example.org", "carol", NULL,
	                                "profile.yaml", 14, &diag));
	assert_false(gw_mailbox_list_add(&p->list, "ANN@example.org", "x", NULL, "profile.yaml", 16,
	                                 &diag));
	assert_false(gw_mailbox_list_add(&p->list, "bob@example.org", "x", NULL, "profile.yaml", 17,
	                                 &diag));
	assert_false(gw_mailbox_list_add(&p->list, "no-at", "x", NULL, "profile.yaml", 18, &diag));
	assert_false(gw_mailbox_list_add(&p->list, "dave@example.org", "x",
	                                 "${GW_TEST_CSV_MISSING}", "profile.yaml", 19, &diag));
	char *errors = diag_text(&diag);
	assert_string_equal(
	        errors,
	        "profile.yaml:16: error: duplicate EmailAddress 'ANN@example.org' (first listed on "
	        "line 2)\n"
	        "profile.yaml:17: error: duplicate EmailAddress 'bob@example.org' (first listed on "
	        "line 12)\n"
	        "profile.yaml:18: error: EmailAddress 'no-at' must contain exactly one '@'\n"
	        "profile.yaml:19: error: password of dave@example.org: environment variable "
	        "GW_TEST_CSV_MISSING is not set\n");
	assert_int_equal(p->list.count, 3);
	assert_row(p, 1, 12, "bob@example.org", "", "inline-secret");
	assert_row(p, 2, 14, "carol@example.org", "carol", NULL);
	assert_int_equal(mbx(p, 2)->extra_count, 0);
	free(errors);
	gw_diag_free(&diag);
	release(p);
	gw_log_clear_secrets();

	struct gw_mailbox_list fresh = {0};
	struct gw_diag d2 = {0};
	assert_true(gw_mailbox_list_add(&fresh, "x@example.org", "x", "", "p.yaml", 3, &d2));
	assert_null(fresh.items[0].mbx.password);
	assert_int_equal(fresh.items[0].mbx.struct_size, sizeof(struct gw_mailbox));
	gw_mailbox_list_free(&fresh);
	gw_diag_free(&d2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_plain_lf),
	        cmocka_unit_test(test_bom_and_crlf),
	        cmocka_unit_test(test_lone_cr_is_data),
	        cmocka_unit_test(test_header_case_and_order),
	        cmocka_unit_test(test_quoted_fields),
	        cmocka_unit_test(test_blank_and_trailing_lines),
	        cmocka_unit_test(test_header_only),
	        cmocka_unit_test(test_missing_password_column),
	        cmocka_unit_test(test_missing_username_column),
	        cmocka_unit_test(test_missing_email_column_is_fatal),
	        cmocka_unit_test(test_data_without_header_is_fatal),
	        cmocka_unit_test(test_empty_file_is_fatal),
	        cmocka_unit_test(test_bad_headers_are_fatal),
	        cmocka_unit_test(test_extra_columns_kept_in_order),
	        cmocka_unit_test(test_wrong_field_count),
	        cmocka_unit_test(test_bad_email_addresses),
	        cmocka_unit_test(test_unterminated_quote_stops_at_opening_quote),
	        cmocka_unit_test(test_stray_quote_in_unquoted_field),
	        cmocka_unit_test(test_text_after_closing_quote),
	        cmocka_unit_test(test_invalid_utf8),
	        cmocka_unit_test(test_duplicates_are_errors_for_the_second),
	        cmocka_unit_test(test_many_rows_and_duplicates),
	        cmocka_unit_test(test_secret_references),
	        cmocka_unit_test(test_load_file_with_bom_crlf_and_extras),
	        cmocka_unit_test(test_load_file_with_bad_rows),
	        cmocka_unit_test(test_load_missing_file),
	        cmocka_unit_test(test_inline_mailboxes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
