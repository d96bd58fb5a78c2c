// SPDX-License-Identifier: MIT
/*
 * test_creds: the credentials chain. Table-driven INI parsing; the chain's
 * order with environment variables and shared files in a temporary HOME;
 * creds_region; and the ECS and IMDSv2 sources against a fake metadata
 * server on loopback (a thread with a tiny HTTP/1.1 responder that insists on
 * the IMDSv2 token and the ECS authorization header and counts requests).
 * Everything the library logs goes to a file, which must name no secret:
 * every secret in this test contains "sEcReT" or "tOkEn".
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "s3vfs/creds.h"
#include "s3vfs/http.h"
#include "s3vfs/log.h"
#include "s3vfs/stats.h"
#include "unit.h"

/* ---- INI parsing ---- */

static const struct ini_case {
	const char *text;
	const char *section;
	const char *key;
	const char *want; /* NULL: absent or malformed document */
} ini_cases[] = {
	{ "[default]\naws_access_key_id = AK\n", "default", "aws_access_key_id", "AK" },
	{ "  [ default ]  \n\t aws_access_key_id\t=\tAK  \n", "default", "aws_access_key_id",
	  "AK" },
	{ "[a]\r\nk = v\r\n", "a", "k", "v" },
	{ "[a]\nk=v", "a", "k", "v" },
	{ "[a]\r\nk=v", "a", "k", "v" },
	{ "# c\n; c\n[a]\n# k = no\n  ; k = no\nk = v\n", "a", "k", "v" },
	{ "[a]\nregion = eu-west-1 # main\n", "a", "region", "eu-west-1" },
	{ "[a]\nregion = eu-west-1\t; main\n", "a", "region", "eu-west-1" },
	{ "[a]\nk = ab#cd;ef\n", "a", "k", "ab#cd;ef" },
	{ "[a]\nAWS_Access_Key_ID = X\n", "a", "aws_access_key_id", "X" },
	{ "[A]\nk=v\n", "a", "k", NULL },
	{ "[a]\nk=v\n[b]\nk=w\n", "b", "k", "w" },
	{ "[a]\nk=v\n[b]\nk=w\n", "a", "k", "v" },
	{ "[a]\nk=1\nk=2\n", "a", "k", "2" },
	{ "[a]\nk=1\n[b]\nk=x\n[a]\nj=2\n", "a", "j", "2" },
	{ "[a]\nk=1\n[b]\nk=x\n[a]\nj=2\n", "a", "k", "1" },
	{ "[profile   dev]\nk=v\n", "profile dev", "k", "v" },
	{ "[profile dev]\nk=v\n", "dev", "k", NULL },
	{ "[a]\nk: v\n", "a", "k", "v" },
	{ "[a]\nk =\n", "a", "k", "" },
	{ "[a]\nk = a=b:c\n", "a", "k", "a=b:c" },
	{ "[a]\nurl = https://h:1/x\n", "a", "url", "https://h:1/x" },
	{ "[profile x]\ns3 =\n  region = wrong\nregion = right\n", "profile x", "region", "right" },
	{ "[profile x]\ns3 =\n  region = wrong\n", "profile x", "region", NULL },
	{ "[profile x]\ns3 =\n  region = wrong\n[y]\nregion = y\n", "profile x", "region", NULL },
	{ "\xef\xbb\xbf[a]\nk=v\n", "a", "k", "v" },
	{ "[a] # c\nk=v", "a", "k", "v" },
	{ "[a]\n\n\n\nk=v\n\n", "a", "k", "v" },
	{ "[a]\nk=v\n", "a", "missing", NULL },
	{ "[a]\nk=v\n", "b", "k", NULL },
	{ "", "a", "k", NULL },
	/* malformed documents: no value at all, even for a good section */
	{ "[a]\nk v\n", "a", "k", NULL },
	{ "[b]\nk=v\n[a]\njunk\n", "b", "k", NULL },
	{ "k=v\n[a]\nk=v\n", "a", "k", NULL },
	{ "[a\nk=v\n", "a", "k", NULL },
	{ "[a]\n = v\n", "a", "k", NULL },
	{ "[]\n[a]\nk=v\n", "a", "k", NULL },
	{ "[  ]\n[a]\nk=v\n", "a", "k", NULL },
	{ "[a] x\nk=v\n", "a", "k", NULL },
};

static void test_ini(void)
{
	for (size_t i = 0; i < sizeof(ini_cases) / sizeof(ini_cases[0]); i++) {
		const struct ini_case *c = &ini_cases[i];
		char *got = creds_ini_lookup(c->text, c->section, c->key);
		if (c->want) {
			CHECK_STR(got, c->want);
		} else if (got) {
			fprintf(stderr, "ini case %zu: got '%s', want none\n", i, got);
			CHECK(got == NULL);
		} else {
			CHECK(got == NULL);
		}
		free(got);
	}
	CHECK(creds_ini_lookup(NULL, "a", "k") == NULL);
	CHECK(creds_ini_lookup("[a]\nk=v\n", NULL, "k") == NULL);
}

/* ---- environment and files ---- */

static char tmpdir[64];
static char aws_dir[128];
static char cred_path[160];
static char conf_path[160];

static const char *const env_names[] = {
	"AWS_ACCESS_KEY_ID",
	"AWS_SECRET_ACCESS_KEY",
	"AWS_SESSION_TOKEN",
	"AWS_PROFILE",
	"AWS_SHARED_CREDENTIALS_FILE",
	"AWS_CONFIG_FILE",
	"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	"AWS_CONTAINER_CREDENTIALS_FULL_URI",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	"AWS_EC2_METADATA_DISABLED",
	"AWS_EC2_METADATA_SERVICE_ENDPOINT",
	"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
	"AWS_REGION",
	"AWS_DEFAULT_REGION",
	"http_proxy",
	"HTTP_PROXY",
	"https_proxy",
	"HTTPS_PROXY",
	"all_proxy",
	"ALL_PROXY",
};

/* A clean slate: no AWS variables, no shared files, instance metadata off. */
static void reset(void)
{
	for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
		unsetenv(env_names[i]);
	setenv("HOME", tmpdir, 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	unlink(cred_path);
	unlink(conf_path);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	size_t n = strlen(text);
	CHECK(write(fd, text, n) == (ssize_t)n);
	CHECK(fchmod(fd, mode) == 0);
	close(fd);
}

/* Resolve with cfg; on success check the keys and the source, and free. */
static int resolve(const struct creds_config *cfg, struct http_client *hc, const char *want_ak,
		   const char *want_tok, const char *want_src)
{
	struct creds_provider *p = NULL;
	struct creds c = { 0 };

	int rc = creds_provider_new(cfg, hc, &p);
	if (rc < 0) {
		CHECK(p == NULL);
		return rc;
	}
	CHECK_STR(creds_source(p), want_src);
	CHECK_INT(creds_get(p, &c), 0);
	CHECK_STR(c.access_key, want_ak);
	CHECK(c.secret_key && strstr(c.secret_key, "sEcReT"));
	if (want_tok)
		CHECK_STR(c.session_token, want_tok);
	else
		CHECK(c.session_token == NULL);
	CHECK_INT(c.expiration, 0);
	creds_cleanup(&c);
	creds_cleanup(&c); /* idempotent */
	CHECK(c.access_key == NULL);
	creds_provider_free(p);
	return rc;
}

static const char creds_text[] = "# shared credentials\n"
				 "[default]\n"
				 "aws_access_key_id = AKDEFAULT\n"
				 "aws_secret_access_key = default-sEcReT\n"
				 "\n"
				 "[dev]\r\n"
				 "aws_access_key_id=AKDEV\r\n"
				 "aws_secret_access_key=dev-sEcReT\r\n"
				 "aws_session_token = dev-tOkEn\r\n"
				 "[both]\n"
				 "aws_access_key_id = AKBOTH-CRED\n"
				 "aws_secret_access_key = both-sEcReT\n"
				 "[half]\n"
				 "aws_access_key_id = AKHALF\n"
				 "[nokeys]\n"
				 "region = us-west-2";

static const char conf_text[] = "[default]\n"
				"region = eu-central-1\n"
				"[profile cfgonly]\n"
				"aws_access_key_id = AKCFG\n"
				"aws_secret_access_key = cfg-sEcReT\n"
				"region = ap-south-1 # comment\n"
				"s3 =\n"
				"    region = nested-wrong\n"
				"[profile both]\n"
				"aws_access_key_id = AKBOTH-CONF\n"
				"aws_secret_access_key = both-sEcReT\n"
				"[dev]\n"
				"region = not-a-profile-section\n";

static void test_explicit_and_env(void)
{
	struct creds_config cfg = { .access_key = "AKOPT", .secret_key = "opt-sEcReT" };

	reset();
	write_file(cred_path, creds_text, 0600);
	setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "env-sEcReT", 1);
	CHECK_INT(resolve(&cfg, NULL, "AKOPT", NULL, "options"), 0);
	cfg.session_token = "opt-tOkEn";
	CHECK_INT(resolve(&cfg, NULL, "AKOPT", "opt-tOkEn", "options"), 0);
	cfg.secret_key = NULL;
	CHECK_INT(resolve(&cfg, NULL, NULL, NULL, NULL), -EINVAL);

	/* environment beats the shared files */
	struct creds_config none = { 0 };
	CHECK_INT(resolve(&none, NULL, "AKENV", NULL, "environment"), 0);
	CHECK_INT(resolve(NULL, NULL, "AKENV", NULL, "environment"), 0);
	setenv("AWS_SESSION_TOKEN", "env-tOkEn", 1);
	CHECK_INT(resolve(&none, NULL, "AKENV", "env-tOkEn", "environment"), 0);
	setenv("AWS_SESSION_TOKEN", "", 1);
	CHECK_INT(resolve(&none, NULL, "AKENV", NULL, "environment"), 0);
	unsetenv("AWS_SECRET_ACCESS_KEY");
	CHECK_INT(resolve(&none, NULL, NULL, NULL, NULL), -EINVAL);
	setenv("AWS_SECRET_ACCESS_KEY", "", 1);
	CHECK_INT(resolve(&none, NULL, NULL, NULL, NULL), -EINVAL);
}

static void test_profiles(void)
{
	struct creds_config cfg = { 0 };
	char src[512];

	reset();
	write_file(cred_path, creds_text, 0600);
	write_file(conf_path, conf_text, 0600);
	snprintf(src, sizeof(src), "profile default (%s)", cred_path);
	CHECK_INT(resolve(&cfg, NULL, "AKDEFAULT", NULL, src), 0);

	setenv("AWS_PROFILE", "dev", 1);
	snprintf(src, sizeof(src), "profile dev (%s)", cred_path);
	CHECK_INT(resolve(&cfg, NULL, "AKDEV", "dev-tOkEn", src), 0);

	cfg.profile = "cfgonly"; /* the option beats AWS_PROFILE */
	snprintf(src, sizeof(src), "profile cfgonly (%s)", conf_path);
	CHECK_INT(resolve(&cfg, NULL, "AKCFG", NULL, src), 0);

	cfg.profile = "both"; /* the credentials file beats config */
	snprintf(src, sizeof(src), "profile both (%s)", cred_path);
	CHECK_INT(resolve(&cfg, NULL, "AKBOTH-CRED", NULL, src), 0);

	cfg.profile = "half";
	CHECK_INT(resolve(&cfg, NULL, NULL, NULL, NULL), -EINVAL);
	cfg.profile = "nope-profile";
	CHECK_INT(resolve(&cfg, NULL, NULL, NULL, NULL), -EINVAL);
	cfg.profile = NULL;
	setenv("AWS_PROFILE", "nope-env-profile", 1);
	CHECK_INT(resolve(&cfg, NULL, NULL, NULL, NULL), -EINVAL);
	/* exists, but holds no keys: on to ECS and IMDS, both absent here */
	setenv("AWS_PROFILE", "nokeys", 1);
	CHECK_INT(resolve(&cfg, NULL, NULL, NULL, NULL), -ENOENT);
	/* without the credentials file: "[dev]" in config is not the profile dev */
	unlink(cred_path);
	setenv("AWS_PROFILE", "dev", 1);
	CHECK_INT(resolve(&cfg, NULL, NULL, NULL, NULL), -EINVAL);

	/* [default] in config alone */
	unsetenv("AWS_PROFILE");
	write_file(conf_path,
		   "[default]\naws_access_key_id=AKCONFDEF\n"
		   "aws_secret_access_key=x-sEcReT\n",
		   0600);
	snprintf(src, sizeof(src), "profile default (%s)", conf_path);
	CHECK_INT(resolve(&cfg, NULL, "AKCONFDEF", NULL, src), 0);

	/* nothing anywhere, the default profile unnamed: -ENOENT, not -EINVAL */
	reset();
	CHECK_INT(resolve(&cfg, NULL, NULL, NULL, NULL), -ENOENT);
	unsetenv("HOME");
	CHECK_INT(resolve(&cfg, NULL, NULL, NULL, NULL), -ENOENT);
}

static void test_files(void)
{
	struct creds_config cfg = { 0 };
	char other_cred[192], other_conf[192], src[512];

	reset();
	snprintf(other_cred, sizeof(other_cred), "%s/other-credentials", tmpdir);
	snprintf(other_conf, sizeof(other_conf), "%s/other-config", tmpdir);
	write_file(cred_path, creds_text, 0600);
	write_file(other_cred, "[x]\naws_access_key_id=AKOTHER\naws_secret_access_key=o-sEcReT",
		   0600);
	write_file(other_conf,
		   "[profile y]\naws_access_key_id=AKOTHERCONF\n"
		   "aws_secret_access_key=o-sEcReT\n",
		   0600);
	setenv("AWS_SHARED_CREDENTIALS_FILE", other_cred, 1);
	setenv("AWS_CONFIG_FILE", other_conf, 1);
	cfg.profile = "x";
	snprintf(src, sizeof(src), "profile x (%s)", other_cred);
	CHECK_INT(resolve(&cfg, NULL, "AKOTHER", NULL, src), 0);
	cfg.profile = "y";
	snprintf(src, sizeof(src), "profile y (%s)", other_conf);
	CHECK_INT(resolve(&cfg, NULL, "AKOTHERCONF", NULL, src), 0);
	cfg.profile = "dev"; /* ~/.aws/credentials is not read any more */
	CHECK_INT(resolve(&cfg, NULL, NULL, NULL, NULL), -EINVAL);

	/* a group-readable file works, with a warning that names it */
	write_file(other_cred, "[x]\naws_access_key_id=AKLOOSE\naws_secret_access_key=l-sEcReT\n",
		   0644);
	cfg.profile = "x";
	snprintf(src, sizeof(src), "profile x (%s)", other_cred);
	CHECK_INT(resolve(&cfg, NULL, "AKLOOSE", NULL, src), 0);

	/* malformed, even in another section */
	write_file(other_cred,
		   "[x]\naws_access_key_id=AKX\naws_secret_access_key=x-sEcReT\n"
		   "[z]\nthis line is broken\n",
		   0600);
	CHECK_INT(resolve(&cfg, NULL, NULL, NULL, NULL), -EINVAL);

	/* over the size cap */
	size_t big = 1024 * 1024 + 16;
	char *text = malloc(big + 1);
	CHECK(text != NULL);
	if (text) {
		memset(text, '#', big);
		text[big] = '\0';
		write_file(other_cred, text, 0600);
		CHECK_INT(resolve(&cfg, NULL, NULL, NULL, NULL), -EFBIG);
		free(text);
	}
	/* /dev/null as the credentials file: ignored, so profile x is nowhere */
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null", 1);
	CHECK_INT(resolve(&cfg, NULL, NULL, NULL, NULL), -EINVAL);
	unlink(other_cred);
	unlink(other_conf);
}

static void test_region(void)
{
	char *r;

	reset();
	CHECK(creds_region(NULL) == NULL);
	setenv("AWS_DEFAULT_REGION", "us-east-2", 1);
	r = creds_region(NULL);
	CHECK_STR(r, "us-east-2");
	free(r);
	setenv("AWS_REGION", "us-east-1", 1);
	r = creds_region("nope");
	CHECK_STR(r, "us-east-1");
	free(r);

	/* The environment wins over the config file, as in the SDKs. */
	write_file(conf_path, conf_text, 0600);
	r = creds_region(NULL);
	CHECK_STR(r, "us-east-1");
	free(r);
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	r = creds_region(NULL);
	CHECK_STR(r, "eu-central-1");
	free(r);
	r = creds_region("cfgonly");
	CHECK_STR(r, "ap-south-1");
	free(r);
	setenv("AWS_PROFILE", "cfgonly", 1);
	r = creds_region(NULL);
	CHECK_STR(r, "ap-south-1");
	free(r);
	r = creds_region("dev"); /* "[dev]" in config is no profile: no region */
	CHECK(r == NULL);
	free(r);
	write_file(conf_path, "[profile default]\nregion = sa-east-1\n", 0600);
	r = creds_region("default");
	CHECK_STR(r, "sa-east-1");
	free(r);
}

/* ---- the fake metadata server ---- */

#define FAKE_TOKEN   "fake-imds-tOkEn"
#define FAKE_ECSAUTH "fake-ecs-auth-tOkEn"
#define FAKE_ROLE    "fake-role"

enum fake_fail { FAIL_NONE, FAIL_DOC_500, FAIL_ROLE_404, FAIL_BAD_JSON, FAIL_CODE };

struct fake {
	int lfd;
	int port;
	int wake[2];
	pthread_t th;
	pthread_mutex_t mu;
	/* under mu: */
	int exp_offset;	      /* Expiration = now + this */
	enum fake_fail fail;  /* for the IMDS credential document */
	const char *ecs_body; /* raw ECS reply; NULL: a good document */
	int token_puts, role_gets, doc_gets, ecs_gets, unauthorized, unknown, serial;
};

/* Value of a request header, case-insensitive name, into out; false if absent. */
static bool req_header(const char *head, const char *name, char *out, size_t n)
{
	size_t nl = strlen(name);
	for (const char *l = strstr(head, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n")) {
		const char *s = l + 2;
		if (strncasecmp(s, name, nl) != 0 || s[nl] != ':')
			continue;
		s += nl + 1;
		while (*s == ' ')
			s++;
		size_t vl = strcspn(s, "\r\n");
		if (vl >= n)
			return false;
		memcpy(out, s, vl);
		out[vl] = '\0';
		return true;
	}
	return false;
}

static void fake_reply(int c, int status, const char *body)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 status, strlen(body));
	if (write(c, head, (size_t)n) != n)
		return;
	size_t off = 0, len = strlen(body);
	while (off < len) {
		ssize_t w = write(c, body + off, len - off);
		if (w <= 0)
			return;
		off += (size_t)w;
	}
}

static void fake_doc(struct fake *f, bool imds, char *out, size_t n)
{
	char exp[32];
	struct tm tm;
	time_t t = time(NULL) + f->exp_offset;

	gmtime_r(&t, &tm);
	strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	f->serial++;
	snprintf(out, n,
		 "{%s\"AccessKeyId\":\"ASIAFAKE%d\",\"SecretAccessKey\":\"fake-sEcReT-%d\","
		 "\"Token\":\"fake-session-tOkEn-%d\",\"Expiration\":\"%s\"}",
		 imds ? "\"Code\":\"Success\",\"Type\":\"AWS-HMAC\"," : "", f->serial, f->serial,
		 f->serial, exp);
}

/* Route one request; returns the status, body in out. Called with f->mu held. */
static int fake_route(struct fake *f, const char *method, const char *path, const char *head,
		      char *out, size_t n)
{
	char v[256];
	bool token = req_header(head, "x-aws-ec2-metadata-token", v, sizeof(v)) &&
		     strcmp(v, FAKE_TOKEN) == 0;

	out[0] = '\0';
	if (strcmp(method, "PUT") == 0 && strcmp(path, "/latest/api/token") == 0) {
		f->token_puts++;
		if (!req_header(head, "x-aws-ec2-metadata-token-ttl-seconds", v, sizeof(v)) ||
		    strcmp(v, "21600") != 0)
			return 400;
		snprintf(out, n, "%s", FAKE_TOKEN);
		return 200;
	}
	if (strcmp(method, "GET") == 0 &&
	    strncmp(path, "/latest/meta-data/iam/security-credentials/", 43) == 0) {
		if (!token) {
			f->unauthorized++;
			return 401;
		}
		if (path[43] == '\0') {
			f->role_gets++;
			snprintf(out, n, "%s\nsecond-role\n", FAKE_ROLE);
			return f->fail == FAIL_ROLE_404 ? 404 : 200;
		}
		if (strcmp(path + 43, FAKE_ROLE) != 0)
			return 404;
		f->doc_gets++;
		if (f->fail == FAIL_DOC_500)
			return 500;
		if (f->fail == FAIL_BAD_JSON)
			snprintf(out, n, "{\"Code\": \"Success\", sEcReT");
		else if (f->fail == FAIL_CODE)
			snprintf(out, n, "{\"Code\":\"AssumeRoleUnauthorizedAccess\"}");
		else
			fake_doc(f, true, out, n);
		return 200;
	}
	if (strcmp(method, "GET") == 0 && strcmp(path, "/ecs/creds") == 0) {
		if (!req_header(head, "authorization", v, sizeof(v)) ||
		    strcmp(v, FAKE_ECSAUTH) != 0) {
			f->unauthorized++;
			return 401;
		}
		f->ecs_gets++;
		if (f->ecs_body)
			snprintf(out, n, "%s", f->ecs_body);
		else
			fake_doc(f, false, out, n);
		return 200;
	}
	f->unknown++;
	return 404;
}

#define FAKE_BODY_MAX (128 * 1024)

static void fake_serve(struct fake *f, int c)
{
	static char head[8192], out[FAKE_BODY_MAX];
	char method[8], path[256];
	size_t len = 0;
	struct timeval tv = { .tv_sec = 2 };

	head[0] = '\0';
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (len < sizeof(head) - 1 && !strstr(head, "\r\n\r\n")) {
		ssize_t n = read(c, head + len, sizeof(head) - 1 - len);
		if (n <= 0)
			return;
		len += (size_t)n;
		head[len] = '\0';
	}
	size_t ml = strcspn(head, " "), pl = strcspn(head + ml + 1, " ");
	if (ml >= sizeof(method) || pl >= sizeof(path))
		return;
	memcpy(method, head, ml);
	method[ml] = '\0';
	memcpy(path, head + ml + 1, pl);
	path[pl] = '\0';
	/* Request bodies here are empty (the token PUT has Content-Length: 0). */
	pthread_mutex_lock(&f->mu);
	int status = fake_route(f, method, path, head, out, sizeof(out));
	pthread_mutex_unlock(&f->mu);
	fake_reply(c, status, out);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	for (;;) {
		struct pollfd pf[2] = { { .fd = f->lfd, .events = POLLIN },
					{ .fd = f->wake[0], .events = POLLIN } };
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[1].revents)
			break;
		int c = accept(f->lfd, NULL, NULL);
		if (c < 0)
			continue;
		fake_serve(f, c);
		close(c);
	}
	return NULL;
}

static int fake_start(struct fake *f)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(f->lfd, 64) < 0 || getsockname(f->lfd, (struct sockaddr *)&sa, &sl) < 0 ||
	    pipe(f->wake) < 0)
		return -1;
	f->port = ntohs(sa.sin_port);
	return pthread_create(&f->th, NULL, fake_main, f) == 0 ? 0 : -1;
}

static void fake_stop(struct fake *f)
{
	if (write(f->wake[1], "x", 1) == 1)
		pthread_join(f->th, NULL);
	close(f->wake[0]);
	close(f->wake[1]);
	close(f->lfd);
	pthread_mutex_destroy(&f->mu);
}

static void fake_set(struct fake *f, int exp_offset, enum fake_fail fail, const char *ecs_body)
{
	pthread_mutex_lock(&f->mu);
	f->exp_offset = exp_offset;
	f->fail = fail;
	f->ecs_body = ecs_body;
	pthread_mutex_unlock(&f->mu);
}

/* One counter, read under the lock. */
static int fake_get(struct fake *f, const int *counter)
{
	pthread_mutex_lock(&f->mu);
	int n = *counter;
	pthread_mutex_unlock(&f->mu);
	return n;
}

/* The access key of the last document served. */
static const char *fake_key(struct fake *f)
{
	static char key[32];
	snprintf(key, sizeof(key), "ASIAFAKE%d", fake_get(f, &f->serial));
	return key;
}

/* Requests seen so far, all kinds (a snapshot under the lock). */
static int fake_total(struct fake *f)
{
	pthread_mutex_lock(&f->mu);
	int n = f->token_puts + f->role_gets + f->doc_gets + f->ecs_gets + f->unauthorized +
		f->unknown;
	pthread_mutex_unlock(&f->mu);
	return n;
}

/* ---- IMDS and ECS against the fake ---- */

static struct stats stats;

static void imds_env(const struct fake *f)
{
	char ep[64];

	reset();
	unsetenv("AWS_EC2_METADATA_DISABLED");
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d/", f->port);
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", ep, 1);
}

/* creds_get must give the document the fake served last. */
static void get_key(struct creds_provider *p, struct fake *f)
{
	struct creds c = { 0 };

	CHECK_INT(creds_get(p, &c), 0);
	CHECK_STR(c.access_key, fake_key(f));
	CHECK(c.secret_key && strstr(c.secret_key, "sEcReT"));
	CHECK(c.session_token && strstr(c.session_token, "tOkEn"));
	CHECK(c.expiration != 0);
	creds_cleanup(&c);
}

/* The fake itself insists on the token: a GET without it is refused. */
static void test_fake_strict(struct fake *f, struct http_client *hc)
{
	char url[128];
	struct http_response resp;
	struct http_request req = { .method = "GET", .url = url, .op = STAT_OTHER };

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/latest/meta-data/iam/security-credentials/",
		 f->port);
	http_response_init(&resp);
	CHECK_INT(http_perform(hc, &req, &resp), 0);
	CHECK_INT(resp.status, 401);
	http_response_cleanup(&resp);
	pthread_mutex_lock(&f->mu);
	CHECK_INT(f->unauthorized, 1);
	f->unauthorized = 0;
	pthread_mutex_unlock(&f->mu);
}

static void test_imds_refresh(struct fake *f, struct http_client *hc)
{
	struct creds_config cfg = { 0 };
	struct creds_provider *p = NULL;
	struct creds c = { 0 };

	imds_env(f);
	fake_set(f, 240, FAIL_NONE, NULL); /* inside the 5-minute window: every get refreshes */
	uint64_t before = atomic_load(&stats.requests[STAT_CREDS]);
	int base = fake_total(f), puts = fake_get(f, &f->token_puts);
	int roles = fake_get(f, &f->role_gets), docs = fake_get(f, &f->doc_gets);
	CHECK_INT(creds_provider_new(&cfg, hc, &p), 0);
	if (!p)
		return;
	CHECK_STR(creds_source(p), "imds");
	CHECK_INT(fake_get(f, &f->token_puts), puts + 1);
	CHECK_INT(fake_get(f, &f->role_gets), roles + 1);
	CHECK_INT(fake_get(f, &f->doc_gets), docs + 1);
	int serial = fake_get(f, &f->serial);
	get_key(p, f);
	CHECK_INT(fake_get(f, &f->serial), serial + 1); /* re-fetched */
	CHECK_INT(fake_get(f, &f->token_puts), puts + 2);
	CHECK_INT(fake_get(f, &f->doc_gets), docs + 2);
	CHECK_INT(fake_total(f), base + 6);
	CHECK_INT(atomic_load(&stats.requests[STAT_CREDS]) - before, 6);

	/* a failed refresh keeps valid credentials, then backs off */
	fake_set(f, 240, FAIL_DOC_500, NULL);
	get_key(p, f);
	CHECK_INT(fake_total(f), base + 9);
	get_key(p, f);
	CHECK_INT(fake_total(f), base + 9);
	creds_provider_free(p);
	p = NULL;

	/* expired credentials and a failed refresh: the error */
	fake_set(f, -60, FAIL_NONE, NULL);
	CHECK_INT(creds_provider_new(&cfg, hc, &p), 0);
	fake_set(f, -60, FAIL_DOC_500, NULL);
	if (p)
		CHECK_INT(creds_get(p, &c), -EREMOTEIO);
	CHECK(c.access_key == NULL);
	creds_provider_free(p);
	p = NULL;

	/* long-lived: no refresh */
	fake_set(f, 3600, FAIL_NONE, NULL);
	CHECK_INT(creds_provider_new(&cfg, hc, &p), 0);
	int n = fake_total(f);
	if (p) {
		get_key(p, f);
		get_key(p, f);
	}
	CHECK_INT(fake_total(f), n);
	CHECK_INT(fake_get(f, &f->unauthorized), 0);
	CHECK_INT(fake_get(f, &f->unknown), 0);
	creds_provider_free(p);
}

static void test_imds_failures(struct fake *f, struct http_client *hc)
{
	static const enum fake_fail fails[] = { FAIL_ROLE_404, FAIL_DOC_500, FAIL_BAD_JSON,
						FAIL_CODE };
	struct creds_config cfg = { 0 };
	struct creds_provider *p = NULL;

	imds_env(f);
	for (size_t i = 0; i < sizeof(fails) / sizeof(fails[0]); i++) {
		fake_set(f, 3600, fails[i], NULL);
		CHECK_INT(creds_provider_new(&cfg, hc, &p), -ENOENT);
	}
	fake_set(f, 3600, FAIL_NONE, NULL);
	int n = fake_total(f);
	setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
	CHECK_INT(creds_provider_new(&cfg, hc, &p), -ENOENT);
	unsetenv("AWS_EC2_METADATA_DISABLED");
	cfg.no_imds = true;
	CHECK_INT(creds_provider_new(&cfg, hc, &p), -ENOENT);
	CHECK_INT(fake_total(f), n);
	cfg.no_imds = false;
	/* a profile wins over IMDS */
	write_file(cred_path, creds_text, 0600);
	CHECK_INT(creds_provider_new(&cfg, hc, &p), 0);
	creds_provider_free(p);
	CHECK_INT(fake_total(f), n);
	unlink(cred_path);
	/* nothing listening */
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
	CHECK_INT(creds_provider_new(&cfg, hc, &p), -ENOENT);
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "ftp://127.0.0.1:1", 1);
	CHECK_INT(creds_provider_new(&cfg, hc, &p), -EINVAL);
}

struct hammer {
	struct creds_provider *p;
	int failures;
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	for (int i = 0; i < 25; i++) {
		struct creds c = { 0 };
		if (creds_get(h->p, &c) != 0 || !c.access_key || !c.secret_key)
			h->failures++;
		creds_cleanup(&c);
	}
	return NULL;
}

/* Many threads while every get wants a refresh: one fetch at a time, no errors. */
static void test_imds_threads(struct fake *f, struct http_client *hc)
{
	struct creds_config cfg = { 0 };
	struct hammer h[4] = { 0 };
	pthread_t th[4];
	struct creds_provider *p = NULL;

	imds_env(f);
	fake_set(f, 240, FAIL_NONE, NULL);
	CHECK_INT(creds_provider_new(&cfg, hc, &p), 0);
	if (!p)
		return;
	for (int i = 0; i < 4; i++) {
		h[i].p = p;
		CHECK_INT(pthread_create(&th[i], NULL, hammer_main, &h[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_INT(h[i].failures, 0);
	}
	creds_provider_free(p);
}

static void ecs_env(const struct fake *f, const char *path)
{
	char uri[128];

	reset();
	snprintf(uri, sizeof(uri), "http://127.0.0.1:%d%s", f->port, path);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", FAKE_ECSAUTH, 1);
}

static void test_ecs(struct fake *f, struct http_client *hc)
{
	struct creds_config cfg = { 0 };
	struct creds_provider *p = NULL;
	char tfile[192];

	ecs_env(f, "/ecs/creds");
	fake_set(f, 240, FAIL_NONE, NULL);
	int gets = fake_get(f, &f->ecs_gets), unauth = fake_get(f, &f->unauthorized);
	CHECK_INT(creds_provider_new(&cfg, hc, &p), 0);
	if (p) {
		CHECK_STR(creds_source(p), "ecs");
		get_key(p, f);
		CHECK_INT(fake_get(f, &f->ecs_gets), gets + 2); /* created, then refreshed */
		creds_provider_free(p);
		p = NULL;
	}
	CHECK_INT(fake_get(f, &f->unauthorized), unauth);

	/* the token from a file, with a trailing newline */
	snprintf(tfile, sizeof(tfile), "%s/ecs-token", tmpdir);
	write_file(tfile, FAKE_ECSAUTH "\n", 0600);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong-tOkEn", 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tfile, 1);
	fake_set(f, 3600, FAIL_NONE, NULL);
	CHECK_INT(creds_provider_new(&cfg, hc, &p), 0);
	creds_provider_free(p);
	p = NULL;
	unlink(tfile);
	CHECK_INT(creds_provider_new(&cfg, hc, &p), -EACCES);
	unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");

	/* a wrong token: refused, and ECS failing is final (IMDS not asked) */
	unsetenv("AWS_EC2_METADATA_DISABLED");
	char ep[64];
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", f->port);
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", ep, 1);
	int puts = fake_get(f, &f->token_puts);
	CHECK_INT(creds_provider_new(&cfg, hc, &p), -EACCES);
	CHECK_INT(fake_get(f, &f->unauthorized), unauth + 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "a\r\nX-Injected: 1", 1);
	CHECK_INT(creds_provider_new(&cfg, hc, &p), -EINVAL);
	/* ECS beats IMDS */
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", FAKE_ECSAUTH, 1);
	CHECK_INT(creds_provider_new(&cfg, hc, &p), 0);
	if (p)
		CHECK_STR(creds_source(p), "ecs");
	creds_provider_free(p);
	CHECK_INT(fake_get(f, &f->token_puts), puts);
}

static const struct uri_case {
	const char *var;
	const char *uri;
	bool allowed;
} uri_cases[] = {
	{ "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com/creds", false },
	{ "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1@example.com/", false },
	{ "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.0.0.1:1/creds", false },
	{ "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:x/creds", false },
	{ "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:/creds", false },
	{ "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http:///creds", false },
	{ "AWS_CONTAINER_CREDENTIALS_FULL_URI", "ftp://127.0.0.1/creds", false },
	{ "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://[::2]:1/creds", false },
	{ "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.2:1/creds", true },
	{ "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://[::1]:1/creds", true },
	{ "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://localhost:1", true },
	{ "AWS_CONTAINER_CREDENTIALS_FULL_URI", "https://127.0.0.1:1/creds", true },
	{ "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "no-slash", false },
};

/* Which full URIs are accepted: refused ones never reach the network. */
static void test_ecs_uris(struct http_client *hc)
{
	struct creds_config cfg = { .no_imds = true };
	struct creds_provider *p = NULL;

	for (size_t i = 0; i < sizeof(uri_cases) / sizeof(uri_cases[0]); i++) {
		const struct uri_case *c = &uri_cases[i];
		reset();
		setenv(c->var, c->uri, 1);
		int rc = creds_provider_new(&cfg, hc, &p);
		CHECK(rc < 0);
		if (c->allowed != (rc != -EINVAL))
			fprintf(stderr, "uri case %zu: %s -> %d\n", i, c->uri, rc);
		CHECK(c->allowed == (rc != -EINVAL));
	}
}

static const struct doc_case {
	const char *body;
	int want_rc;
	time_t want_exp;
	bool want_token;
} doc_cases[] = {
	{ "{\"AccessKeyId\":\"AK\",\"SecretAccessKey\":\"s-sEcReT\",\"Token\":\"t-tOkEn\","
	  "\"Expiration\":\"2099-01-01T00:00:00Z\"}",
	  0, 4070908800, true },
	{ "{\"AccessKeyId\":\"AK\",\"SecretAccessKey\":\"s-sEcReT\","
	  "\"Expiration\":\"2099-01-01T00:00:00.123+01:00\"}",
	  0, 4070908800 - 3600, false },
	{ "{\"AccessKeyId\":\"AK\",\"SecretAccessKey\":\"s-sEcReT\",\"Token\":\"t-tOkEn\","
	  "\"RoleArn\":\"arn:aws:iam::1:role/x\"}",
	  0, 0, true },
	{ "{\"Code\":\"Success\",\"AccessKeyId\":\"AK\",\"SecretAccessKey\":\"s-sEcReT\"}", 0, 0,
	  false },
	{ "not json sEcReT", -EPROTO, 0, false },
	{ "[\"AccessKeyId\"]", -EPROTO, 0, false },
	{ "{\"AccessKeyId\":\"AK\"}", -EPROTO, 0, false },
	{ "{\"AccessKeyId\":\"AK\",\"SecretAccessKey\":\"\"}", -EPROTO, 0, false },
	{ "{\"AccessKeyId\":7,\"SecretAccessKey\":\"s-sEcReT\"}", -EPROTO, 0, false },
	{ "{\"AccessKeyId\":\"AK\",\"AccessKeyId\":\"AK2\",\"SecretAccessKey\":\"s-sEcReT\"}",
	  -EPROTO, 0, false },
	{ "{\"Code\":\"Failure\",\"AccessKeyId\":\"AK\",\"SecretAccessKey\":\"s-sEcReT\"}", -EACCES,
	  0, false },
	{ "{\"Code\":1,\"AccessKeyId\":\"AK\",\"SecretAccessKey\":\"s-sEcReT\"}", -EACCES, 0,
	  false },
	{ "{\"AccessKeyId\":\"AK\",\"SecretAccessKey\":\"s-sEcReT\","
	  "\"Expiration\":\"2099-13-01T00:00:00Z\"}",
	  -EPROTO, 0, false },
	{ "{\"AccessKeyId\":\"AK\",\"SecretAccessKey\":\"s-sEcReT\","
	  "\"Expiration\":\"2099-01-01 00:00:00Z\"}",
	  -EPROTO, 0, false },
	{ "{\"AccessKeyId\":\"AK\",\"SecretAccessKey\":\"s-sEcReT\","
	  "\"Expiration\":\"2099-01-01T00:00:00\"}",
	  -EPROTO, 0, false },
	{ "{\"AccessKeyId\":\"AK\",\"SecretAccessKey\":\"s-sEcReT\","
	  "\"Expiration\":\"2099-01-01T00:00:00Zjunk\"}",
	  -EPROTO, 0, false },
};

/* The credential document parser, through the ECS source. */
static void test_docs(struct fake *f, struct http_client *hc)
{
	struct creds_config cfg = { .no_imds = true };
	struct creds_provider *p = NULL;
	struct creds c = { 0 };

	ecs_env(f, "/ecs/creds");
	for (size_t i = 0; i < sizeof(doc_cases) / sizeof(doc_cases[0]); i++) {
		const struct doc_case *d = &doc_cases[i];
		fake_set(f, 0, FAIL_NONE, d->body);
		int rc = creds_provider_new(&cfg, hc, &p);
		if (rc != d->want_rc)
			fprintf(stderr, "doc case %zu: rc %d\n", i, rc);
		CHECK_INT(rc, d->want_rc);
		if (rc < 0)
			continue;
		CHECK_INT(creds_get(p, &c), 0);
		CHECK_STR(c.access_key, "AK");
		CHECK_INT(c.expiration, d->want_exp);
		CHECK(d->want_token == (c.session_token != NULL));
		creds_cleanup(&c);
		creds_provider_free(p);
		p = NULL;
	}
	/* a reply over the 64 KiB cap */
	char *big = malloc(100 * 1024);
	CHECK(big != NULL);
	if (big) {
		memset(big, ' ', 100 * 1024 - 1);
		big[100 * 1024 - 1] = '\0';
		fake_set(f, 0, FAIL_NONE, big);
		CHECK_INT(creds_provider_new(&cfg, hc, &p), -E2BIG);
		fake_set(f, 0, FAIL_NONE, NULL);
		free(big);
	}
}

static void test_network(void)
{
	struct fake f;
	struct http_config hcfg;
	struct http_client *hc = NULL;

	CHECK_INT(fake_start(&f), 0);
	http_config_default(&hcfg);
	hcfg.connect_timeout_ms = 1000;
	hcfg.timeout_ms = 3000;
	stats_init(&stats);
	CHECK_INT(http_client_new(&hcfg, &stats, &hc), 0);
	if (!hc)
		return;
	test_fake_strict(&f, hc);
	test_imds_refresh(&f, hc);
	test_imds_failures(&f, hc);
	test_imds_threads(&f, hc);
	test_ecs(&f, hc);
	test_ecs_uris(hc);
	test_docs(&f, hc);
	http_client_free(hc);
	fake_stop(&f);
}

/* ---- the log ---- */

static int saved_stderr = -1;
static char log_path[160];

static void capture_log(void)
{
	snprintf(log_path, sizeof(log_path), "%s/log", tmpdir);
	fflush(stderr);
	saved_stderr = dup(2);
	int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && saved_stderr >= 0);
	dup2(fd, 2);
	close(fd);
}

/* Restore stderr, echo the log there, and check what it says (and does not). */
static void check_log(void)
{
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	char *log = unit_read_file(log_path, NULL);
	CHECK(log != NULL);
	if (!log)
		return;
	fputs(log, stderr);
	for (char *l = log; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		size_t n = strcspn(l, "\n");
		if (strncmp(l, "s3vfs[", 6) != 0)
			continue; /* a test failure's own message */
		char save = l[n];
		l[n] = '\0';
		CHECK(strstr(l, "sEcReT") == NULL && strstr(l, "tOkEn") == NULL);
		l[n] = save;
	}
	CHECK(strstr(log, "AWS profile 'nope-profile' not found") != NULL);
	CHECK(strstr(log, "AWS profile 'nope-env-profile' not found") != NULL);
	CHECK(strstr(log, "other-credentials is readable by group or others") != NULL);
	CHECK(strstr(log, "refreshing AWS credentials from imds failed") != NULL);
	free(log);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_creds.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(aws_dir, sizeof(aws_dir), "%s/.aws", tmpdir);
	snprintf(cred_path, sizeof(cred_path), "%s/credentials", aws_dir);
	snprintf(conf_path, sizeof(conf_path), "%s/config", aws_dir);
	CHECK_INT(mkdir(aws_dir, 0700), 0);

	test_ini();
	capture_log();
	log_set_level(LOG_LVL_DEBUG);
	test_explicit_and_env();
	test_profiles();
	test_files();
	test_region();
	test_network();
	check_log();

	reset();
	unlink(log_path);
	rmdir(aws_dir);
	rmdir(tmpdir);
	return unit_end("creds");
}
