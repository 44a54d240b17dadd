/* The Public Suffix List and organizational domains (see psl.h): the rules in a sorted
 * array, looked up with bsearch for each suffix of a name. */
#include "smtp/psl.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"
#include "core/banned.h"

#define PSL_FILE_MAX (8u << 20)
#define PSL_NAME_MAX 253

struct psl {
	char **rules; /* lower-case: "com", "*.ck", "!www.ck" */
	size_t n;
};

static int psl_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct psl *psl_parse(const char *text)
{
	struct psl *psl = xcalloc(1, sizeof(*psl));
	size_t cap = 0;
	for (const char *p = text; *p != '\0';) {
		size_t len = strcspn(p, "\r\n");
		size_t word = strcspn(p, " \t\r\n"); /* a rule ends at white space */
		if (word > 0 && word <= PSL_NAME_MAX &&
		    !(word >= 2 && p[0] == '/' && p[1] == '/')) {
			if (psl->n == cap) {
				cap = cap ? cap * 2 : 1024;
				psl->rules = xrealloc(psl->rules, cap * sizeof(*psl->rules));
			}
			char *r = xstrndup(p, word);
			for (char *c = r; *c != '\0'; c++)
				if (*c >= 'A' && *c <= 'Z')
					*c = (char)(*c - 'A' + 'a');
			psl->rules[psl->n++] = r;
		}
		p += len;
		while (*p == '\r' || *p == '\n')
			p++;
	}
	if (psl->n > 0)
		qsort(psl->rules, psl->n, sizeof(*psl->rules), psl_cmp);
	return psl;
}

struct psl *psl_load(const char *path, const char **error_r)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		*error_r = "cannot open the public suffix list";
		return NULL;
	}
	char *text = xmalloc(PSL_FILE_MAX + 1);
	size_t n = fread(text, 1, PSL_FILE_MAX, f);
	bool whole = feof(f) != 0;
	fclose(f);
	text[n] = '\0';
	struct psl *psl = whole ? psl_parse(text) : NULL;
	free(text);
	if (psl == NULL || psl->n == 0) {
		psl_free(&psl);
		*error_r = whole ? "the public suffix list holds no rule"
		                 : "the public suffix list is too large";
		return NULL;
	}
	return psl;
}

void psl_free(struct psl **pp)
{
	struct psl *psl = *pp;
	if (psl == NULL)
		return;
	for (size_t i = 0; i < psl->n; i++)
		free(psl->rules[i]);
	free(psl->rules);
	free(psl);
	*pp = NULL;
}

static bool psl_has(const struct psl *psl, const char *prefix, const char *name)
{
	char key[PSL_NAME_MAX + 4];
	snprintf(key, sizeof(key), "%s%s", prefix, name);
	const char *k = key;
	return psl->n > 0 && bsearch(&k, psl->rules, psl->n, sizeof(*psl->rules), psl_cmp) != NULL;
}

const char *psl_org_domain(const struct psl *psl, const char *domain)
{
	size_t len = strlen(domain);
	if (len == 0 || len > PSL_NAME_MAX || domain[0] == '.' || domain[len - 1] == '.')
		return NULL;
	char lower[PSL_NAME_MAX + 1];
	for (size_t i = 0; i <= len; i++)
		lower[i] = (char)(domain[i] >= 'A' && domain[i] <= 'Z' ? domain[i] - 'A' + 'a'
		                                                       : domain[i]);
	/* Label starts, left to right. */
	size_t starts[128], n = 0;
	for (size_t i = 0; i < len && n < 128; i++)
		if (i == 0 || lower[i - 1] == '.')
			starts[n++] = i;
	/* The prevailing rule: the number of labels of the public suffix. An exception rule
	 * wins and stands for its suffix less one label; else the longest match; else "*". */
	size_t suffix = 1;
	for (size_t k = 0; k < n; k++) { /* the suffix made of labels k..n-1 */
		const char *s = lower + starts[k];
		size_t labels = n - k;
		if (psl_has(psl, "!", s)) {
			suffix = labels - 1;
			break;
		}
		bool wild = k + 1 < n && psl_has(psl, "*.", lower + starts[k + 1]);
		if (psl_has(psl, "", s) || wild) {
			suffix = labels;
			break;
		}
	}
	if (suffix >= n)
		return NULL; /* the name is a public suffix itself */
	return domain + starts[n - suffix - 1];
}
