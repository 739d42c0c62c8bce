/* One pass over an HTML page: visible text with white space collapsed, and the media elements
 * with their attributes and character positions in that text.
 *
 * This is the native scanner behind wdb.html.extract; wdb/html/scan_lexbor.py computes the same
 * result with lexbor (the reference, and the fallback where this module is not built).  It is an
 * HTML5 tokenizer (character references, raw text and RCDATA elements, comments, foreign content)
 * with a light open-element stack, not a tree builder: it never builds a DOM and creates Python
 * objects only for the elements it returns.
 *
 * scan(html, max_chars) -> (text, capped, title, lang, xml_lang, meta_lang, base, elements,
 *                           figures, og, has_main, regions)
 *   elements: [(tag, {attr: value}, pos | None, parent element index | -1, figure index | -1,
 *               region | None)]
 *   region: the page region of the element's open ancestors (REGION_NAMES below; None: no
 *           labelled ancestor); has_main: an element of the page is an article/main region.
 *   text: blocks end lines; paragraphs, headings, lists, tables, figures and <hr> are separated
 *         by a blank line ("\n\n").
 *   figures:  [(parent figure index | -1, raw text of its first figcaption | None)]
 *   regions:  [(position in text, region | None)]: where the region of the text changes (the first
 *             character written under another innermost region)
 *   og:       [content of og:image metas]
 * windows(text, positions, words) -> [(lo, hi)]: word windows, as str.split / rsplit count words.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static PyObject *ENTITIES = NULL; /* html.entities.html5 */
static PyObject *EXTS = NULL;     /* media file extension -> kind */

/* ---------------------------------------------------------------- buffers */
typedef struct {
    Py_UCS4 *p;
    Py_ssize_t n, cap;
} Buf;

static int buf_grow_slow(Buf *b, Py_ssize_t need);
static inline int buf_grow(Buf *b, Py_ssize_t need) {
    if (b->n + need <= b->cap) return 0;
    return buf_grow_slow(b, need);
}
static int buf_grow_slow(Buf *b, Py_ssize_t need) {
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + need) cap *= 2;
    Py_UCS4 *p = PyMem_Realloc(b->p, cap * sizeof(Py_UCS4));
    if (!p) { PyErr_NoMemory(); return -1; }
    b->p = p;
    b->cap = cap;
    return 0;
}
static inline int buf_put(Buf *b, Py_UCS4 c) {
    if (b->n >= b->cap && buf_grow(b, 1) < 0) return -1;
    b->p[b->n++] = c;
    return 0;
}
static PyObject *buf_str(Buf *b, Py_ssize_t start, Py_ssize_t len) {
    return PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, b->p + start, len);
}

/* ---------------------------------------------------------------- state */
#define MAX_ATTRS 64
#define LCACHE 256
#define MAX_DEPTH 1024
#define TAG_MAX 24

enum { F_FIGURE = 1, F_CAPTION = 2, F_TEMPLATE = 4, F_FOREIGN = 8, F_HIDDEN = 16, F_HEADNOSCRIPT = 32, F_TITLE = 64 };

typedef struct {
    Py_ssize_t nstart, nlen, vstart, vlen; /* name (ASCII-lowercased) and value, in S.vals */
} Attr;

typedef struct {
    char name[TAG_MAX];
    int nlen;
    int flags;
    int elem; /* element index or -1 */
    int fig;  /* figure index (F_FIGURE) or -1 */
    int region; /* the region of this element and its ancestors (R_*) */
    int kf;     /* its K_* flags */
} Entry;

typedef struct {
    PyObject *tag, *attrs;
    Py_ssize_t pos; /* -1: no marker */
    int parent, fig, region;
} Elem;

typedef struct {
    int parent;
    int state; /* 0: no figcaption seen; 1: caption taken (or being captured) */
    PyObject *caption;
} Figure;

typedef struct {
    const void *u; /* the input: its PyUnicode kind (1, 2 or 4 bytes a character) */
    Py_ssize_t n;
    /* text and its white-space state */
    Buf text;
    int pend; /* white space seen since the last character written: 0 none, 1 space, 2 newline,
                 3 paragraph break (a blank line) */
    Py_ssize_t waiting; /* element whose marker waits for the next character, or -1 */
    int capped;
    Py_ssize_t max;
    /* side buffers */
    Buf cap;   /* figcaption being captured */
    int capturing;
    int titling; /* inside an SVG <title> taken as the page title */
    Buf title;
    Buf vals; /* attribute values of the current tag */
    Attr attrs[MAX_ATTRS];
    int nattrs;
    /* open elements */
    Entry stack[MAX_DEPTH];
    int depth;
    int tmpl, foreign, body, hidden; /* hidden: inside <noscript>, parsed but not text */
    /* region labels of the current tag's class, id and role attributes (R_*), and its own label */
    int lab_class, lab_id, lab_role, seen_lab, label, has_main, kf;
    /* the labels of class values already seen (pages repeat them): start and length in the input */
    struct { Py_ssize_t start, len; int label; } lcache[LCACHE];
    /* the region of the text: (position, region) where it changes, at the first character written */
    struct Region { Py_ssize_t pos; int region; } *regs;
    Py_ssize_t nreg, regcap;
    int last_region;
    /* results */
    Elem *elems;
    Py_ssize_t nelems, elemcap;
    Figure *figs;
    Py_ssize_t nfigs, figcap;
    PyObject *og, *title_obj, *lang, *xml_lang, *meta_lang, *base;
} S;

static inline int is_ws(Py_UCS4 c) { return c == ' ' || c == '\n' || c == '\t' || c == '\f' || c == '\r'; }
static inline int is_alpha(Py_UCS4 c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static inline int is_alnum(Py_UCS4 c) { return is_alpha(c) || (c >= '0' && c <= '9'); }
static inline char lower(Py_UCS4 c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : (c < 128 ? (char)c : '?'); }

#define NAME_IS(nm, len, lit) ((len) == (int)sizeof(lit) - 1 && memcmp((nm), (lit), sizeof(lit) - 1) == 0)


static const char *const BLOCK[] = {
    "p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th", "section", "article",
    "header", "footer", "nav", "aside", "blockquote", "pre", "dl", "dt", "dd", "table", "ul", "ol", "form",
    "figure", "figcaption", "main", "hr", "address", "caption", "details", "summary", "option", NULL};
static const char *const VOID[] = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr",
    "param", "keygen", "basefont", "bgsound", "frame", NULL};
static const char *const HEADISH[] = {
    "html", "head", "base", "basefont", "bgsound", "link", "meta", "title", "noscript", "noframes",
    "script", "style", "template", NULL};
static const char *const BREAKOUT[] = {
    "b", "big", "blockquote", "body", "br", "center", "code", "dd", "div", "dl", "dt", "em", "embed", "h1",
    "h2", "h3", "h4", "h5", "h6", "head", "hr", "i", "img", "li", "listing", "menu", "meta", "nobr", "ol",
    "p", "pre", "ruby", "s", "small", "span", "strong", "strike", "sub", "sup", "table", "tt", "u", "ul",
    "var", NULL};
static const char *const HEADNOSCRIPT[] = {"link", "meta", "style", "basefont", "bgsound", "noframes", NULL};
/* blocks separated by a blank line: paragraphs, headings, lists, tables, figures */
static const char *const PARA[] = {
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "blockquote", "pre", "table", "figure", "hr", NULL};
/* the tree builder's "special" elements (those that are pushed), scope boundaries, formatting elements */
static const char *const SPECIAL[] = {
    "address", "applet", "article", "aside", "blockquote", "body", "button", "caption", "center", "colgroup", "dd",
    "details", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "frameset", "h1",
    "h2", "h3", "h4", "h5", "h6", "head", "header", "hgroup", "html", "iframe", "li", "listing", "main", "marquee",
    "menu", "nav", "noembed", "noframes", "noscript", "object", "ol", "p", "plaintext", "pre", "search", "section",
    "select", "summary", "table", "tbody", "td", "template", "textarea", "tfoot", "th", "thead", "title", "tr",
    "ul", "xmp", NULL};
static const char *const SCOPE[] = {
    "applet", "caption", "html", "table", "td", "th", "marquee", "object", "template", NULL};
static const char *const FORMATTING[] = {
    "a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt", "u", NULL};
/* elements whose end tag is optional: a new one closes an open one near the top of the stack */
static const char *const AUTOCLOSE[] = {"p", "li", "option", "dt", "dd", "tr", "td", "th", NULL};

/* every list above as one bit per tag name, looked up once per tag in a small hash table */
enum { K_BLOCK = 1, K_VOID = 2, K_HEADISH = 4, K_BREAKOUT = 8, K_AUTOCLOSE = 16, K_COLLECT = 32,
       K_HEADNOSCRIPT = 64, K_PARA = 128, K_SPECIAL = 256, K_SCOPE = 512, K_FORMATTING = 1024 };
static const char *const COLLECT[] = {"img", "image", "audio", "video", "source", "track", "iframe", "embed",
                                      "object", "a", "picture", "html", "meta", "base", NULL};
#define TABLE 512
static struct { char name[TAG_MAX]; int len; int flags; } TAGS[TABLE];

static unsigned tag_hash(const char *nm, int len) {
    unsigned h = 2166136261u;
    for (int t = 0; t < len; t++) h = (h ^ (unsigned char)nm[t]) * 16777619u;
    return h & (TABLE - 1);
}
static void tag_add(const char *const *list, int flag) {
    for (; *list; list++) {
        int len = (int)strlen(*list);
        unsigned h = tag_hash(*list, len);
        while (TAGS[h].len && !(TAGS[h].len == len && memcmp(TAGS[h].name, *list, len) == 0)) h = (h + 1) & (TABLE - 1);
        memcpy(TAGS[h].name, *list, len);
        TAGS[h].len = len;
        TAGS[h].flags |= flag;
    }
}
static int tag_flags(const char *nm, int len) {
    if (len >= TAG_MAX) return 0;
    unsigned h = tag_hash(nm, len);
    while (TAGS[h].len) {
        if (TAGS[h].len == len && memcmp(TAGS[h].name, nm, len) == 0) return TAGS[h].flags;
        h = (h + 1) & (TABLE - 1);
    }
    return 0;
}

/* ---------------------------------------------------------------- page regions */
/* A label per element: from its tag (header, footer, nav, aside, form, main, article, menu), else
 * its role attribute, else the best of the words of its class names and id ("site-footer",
 * "main-nav", "menu-item", "sidebar", ...; state classes such as "has-sidebar" or "nav-open" say
 * nothing).  An element's region combines its parent's with its own label (combine()).
 * wdb/html/extract.py computes the same for the lexbor scan (_region_label, _combine). */
enum { R_NONE, R_MAIN, R_ARTICLE, R_HEADER, R_NAV, R_FOOTER, R_ASIDE, R_FORM, R_MENU, R_COUNT,
       R_MAINTAG = 15, K_PREFIX = 16, K_STATE = 32 };
/* R_MAIN: a class or id says so ("content", "post", ...); R_ARTICLE: <article>, or anything inside
 * <main> or role=main (R_MAINTAG, a label only: the page's main content, whatever encloses it) */
static const char *const REGION_NAMES[R_COUNT] = {
    "", "main", "article", "header", "nav", "footer", "aside", "form", "menu"};
static PyObject *REGION_OBJ[R_COUNT];
/* among the words of one element, the first in this order wins */
static const int RANK[R_COUNT] = {99, 7, 7, 6, 2, 5, 4, 3, 1};
struct Keyword { const char *word; int label; };
static const struct Keyword KEYWORDS[] = {
    {"menu", R_MENU}, {"menus", R_MENU}, {"menubar", R_MENU}, {"megamenu", R_MENU}, {"mainmenu", R_MENU},
    {"submenu", R_MENU}, {"menuitem", R_MENU}, {"dropdown", R_MENU},
    {"nav", R_NAV}, {"navbar", R_NAV}, {"navigation", R_NAV}, {"topnav", R_NAV}, {"mainnav", R_NAV},
    {"sitenav", R_NAV}, {"subnav", R_NAV}, {"breadcrumb", R_NAV}, {"breadcrumbs", R_NAV},
    {"pagination", R_NAV}, {"pager", R_NAV},
    {"form", R_FORM}, {"search", R_FORM}, {"searchform", R_FORM}, {"searchbox", R_FORM}, {"login", R_FORM},
    {"newsletter", R_FORM}, {"subscribe", R_FORM}, {"signup", R_FORM},
    {"aside", R_ASIDE}, {"sidebar", R_ASIDE}, {"widget", R_ASIDE}, {"widgets", R_ASIDE}, {"related", R_ASIDE},
    {"sponsor", R_ASIDE}, {"sponsored", R_ASIDE}, {"promo", R_ASIDE}, {"advert", R_ASIDE},
    {"advertisement", R_ASIDE}, {"ad", R_ASIDE}, {"ads", R_ASIDE}, {"share", R_ASIDE}, {"sharing", R_ASIDE},
    {"social", R_ASIDE}, {"comments", R_ASIDE}, {"comment", R_ASIDE},
    {"footer", R_FOOTER}, {"colophon", R_FOOTER}, {"copyright", R_FOOTER}, {"siteinfo", R_FOOTER},
    {"sitefooter", R_FOOTER}, {"pagefooter", R_FOOTER},
    {"header", R_HEADER}, {"masthead", R_HEADER}, {"siteheader", R_HEADER}, {"pageheader", R_HEADER},
    {"topbar", R_HEADER},
    {"main", R_MAIN}, {"content", R_MAIN}, {"article", R_MAIN}, {"post", R_MAIN}, {"entry", R_MAIN},
    {"story", R_MAIN}, {"hentry", R_MAIN}, {"maincontent", R_MAIN}, {"articlebody", R_MAIN},
    {"postbody", R_MAIN}, {"entrycontent", R_MAIN}, {"postcontent", R_MAIN}, {"storybody", R_MAIN},
    {"has", K_PREFIX}, {"is", K_PREFIX}, {"no", K_PREFIX}, {"with", K_PREFIX},
    {"open", K_STATE}, {"opened", K_STATE}, {"active", K_STATE}, {"fixed", K_STATE}, {"sticky", K_STATE},
    {"closed", K_STATE}, {"visible", K_STATE}, {"hidden", K_STATE}, {"expanded", K_STATE},
    {"collapsed", K_STATE}, {"enabled", K_STATE}, {"disabled", K_STATE}, {"scrolled", K_STATE},
    {"toggled", K_STATE}, {"shown", K_STATE},
    {NULL, 0}};
#define KW_TABLE 256
#define KW_MAX 32
static struct { char word[KW_MAX]; int len; int label; } KW[KW_TABLE];

static void kw_add(const char *word, int label) {
    int len = (int)strlen(word);
    unsigned h = tag_hash(word, len) & (KW_TABLE - 1);
    while (KW[h].len) h = (h + 1) & (KW_TABLE - 1);
    memcpy(KW[h].word, word, len);
    KW[h].len = len;
    KW[h].label = label;
}
static int kw_find(const char *w, int len) {
    if (len < 2 || len > 13) return 0; /* the keywords' lengths */
    unsigned h = tag_hash(w, len) & (KW_TABLE - 1);
    while (KW[h].len) {
        if (KW[h].len == len && memcmp(KW[h].word, w, len) == 0) return KW[h].label;
        h = (h + 1) & (KW_TABLE - 1);
    }
    return 0;
}
static inline int better(int a, int b) { /* the label of higher rank of two (0: none) */
    if (!a) return b;
    if (!b) return a;
    return RANK[b] < RANK[a] ? b : a;
}
/* the label of one class name (or id) from the labels of its words (labs[0..ntok)) and of all its
 * words run together (all, alllen) */
static int name_label(const int *labs, int ntok, const char *all, int alllen) {
    if (!ntok || labs[0] == K_PREFIX || labs[ntok - 1] == K_STATE) return 0;
    int best = 0;
    for (int t = 0; t < ntok; t++)
        if (labs[t] > 0 && labs[t] < R_COUNT) best = better(best, labs[t]);
    if (ntok > 1 && alllen < KW_MAX) {
        int l = kw_find(all, alllen);
        if (l > 0 && l < R_COUNT) best = better(best, l);
    }
    return best;
}
static int tag_label(const char *nm, int len) {
    if (NAME_IS(nm, len, "header")) return R_HEADER;
    if (NAME_IS(nm, len, "footer")) return R_FOOTER;
    if (NAME_IS(nm, len, "nav")) return R_NAV;
    if (NAME_IS(nm, len, "aside")) return R_ASIDE;
    if (NAME_IS(nm, len, "form")) return R_FORM;
    if (NAME_IS(nm, len, "main")) return R_MAINTAG;
    if (NAME_IS(nm, len, "article")) return R_ARTICLE;
    if (NAME_IS(nm, len, "menu")) return R_MENU;
    return 0;
}
/* role="...": its first word */
static int role_label(const char *w, int len) {
    if (NAME_IS(w, len, "banner")) return R_HEADER;
    if (NAME_IS(w, len, "navigation")) return R_NAV;
    if (NAME_IS(w, len, "contentinfo")) return R_FOOTER;
    if (NAME_IS(w, len, "complementary")) return R_ASIDE;
    if (NAME_IS(w, len, "search") || NAME_IS(w, len, "form")) return R_FORM;
    if (NAME_IS(w, len, "main")) return R_MAINTAG;
    if (NAME_IS(w, len, "article")) return R_ARTICLE;
    if (NAME_IS(w, len, "menu") || NAME_IS(w, len, "menubar")) return R_MENU;
    return 0;
}
/* the region of an element from its parent's region and its own label */
static inline int combine(int parent, int label) {
    if (!label) return parent;
    if (label == R_MAINTAG) return R_ARTICLE; /* boilerplate around <main> was mislabelled */
    if (label == R_MAIN || label == R_ARTICLE) /* main content never relabels boilerplate around it */
        return parent == R_NONE || parent == R_MAIN ? label : parent;
    if ((label == R_HEADER || label == R_FOOTER) && parent == R_ARTICLE)
        return parent; /* an article's own header or footer */
    return label;
}

/* interned tag names */
static PyObject *T_IMG, *T_AUDIO, *T_VIDEO, *T_SOURCE, *T_TRACK, *T_IFRAME, *T_EMBED, *T_OBJECT, *T_A,
    *T_PICTURE;

/* ---------------------------------------------------------------- text */
static inline int is_space(Py_UCS4 c) { return Py_UNICODE_ISSPACE(c); }

static inline void resolve_waiting(S *s, Py_UCS4 next) {
    /* the marker's separator: a space between two words, nothing next to white space */
    Elem *e = &s->elems[s->waiting];
    s->waiting = -1;
    Py_ssize_t n = s->text.n;
    if (next && !is_space(next) && n && !is_space(s->text.p[n - 1]) && !s->capped) {
        if (n >= s->max) {
            s->capped = 1;
        } else {
            buf_put(&s->text, ' ');
        }
    }
    e->pos = s->text.n;
}

/* the separator for white space of level pend (1 space, 2 newline, 3 blank line), as far as the cap allows */
static inline void put_sep(S *s, int pend) {
    int k = pend == 3 ? 2 : 1;
    Py_UCS4 c = pend == 1 ? ' ' : '\n';
    for (int t = 0; t < k; t++) {
        if (s->text.n >= s->max) {
            s->capped = 1;
            return;
        }
        buf_put(&s->text, c);
    }
}

/* the text region changes here: the first character written under another region */
static int grow_array(void **p, Py_ssize_t n, Py_ssize_t *cap, size_t size, Py_ssize_t first);
static int note_region_at(S *s, int r, Py_ssize_t pos) {
    if (grow_array((void **)&s->regs, s->nreg, &s->regcap, sizeof(struct Region), 64) < 0) return -1;
    s->regs[s->nreg].pos = pos;
    s->regs[s->nreg++].region = r;
    s->last_region = r;
    return 0;
}
static inline int top_region(S *s) { return s->depth ? s->stack[s->depth - 1].region : R_NONE; }

/* one character of visible text (after character references and newline normalisation) */
static void pop_to(S *s, int d);

static inline int emit(S *s, Py_UCS4 c) {
    if (s->hidden && !s->tmpl && s->depth && (s->stack[s->depth - 1].flags & F_HEADNOSCRIPT) && !is_space(c)) {
        pop_to(s, s->depth - 1); /* text ends a <noscript> in <head>: it belongs to the body */
        s->body = 1;
    }
    if (s->tmpl || s->hidden) return 0;
    if (c == 0) return 0;
    if (c >= 0xE000 && c <= 0xE004) c = ' '; /* the lexbor scan's in-band markers */
    if (s->capturing && buf_put(&s->cap, c) < 0) return -1;
    if (s->titling && buf_put(&s->title, c) < 0) return -1;
    if (is_space(c)) {
        if (s->waiting >= 0) resolve_waiting(s, c);
        int p = c == '\n' ? 2 : 1;
        if (p > s->pend) s->pend = p;
        return 0;
    }
    s->body = 1;
    if (s->waiting >= 0) {
        resolve_waiting(s, c);
    } else if (s->pend && s->text.n && !is_space(s->text.p[s->text.n - 1]) && !s->capped) {
        put_sep(s, s->pend);
        if (PyErr_Occurred()) return -1;
    }
    s->pend = 0;
    if (s->capped) return 0;
    if (s->text.n >= s->max) {
        s->capped = 1;
        return 0;
    }
    if (top_region(s) != s->last_region && note_region_at(s, top_region(s), s->text.n) < 0) return -1;
    return buf_put(&s->text, c);
}


/* a marker for element k at the current point of the text */
static void marker(S *s, Py_ssize_t k) {
    if (s->hidden) return; /* no position: not in the text */
    if (s->waiting >= 0) resolve_waiting(s, 0); /* two markers in a row: nothing between */
    if (s->capped || !s->text.n) {
        s->elems[k].pos = s->text.n;
        return;
    }
    if (s->pend) {
        if (is_space(s->text.p[s->text.n - 1])) {
            /* right after another item's separator: no second one */
        } else {
            put_sep(s, s->pend);
        }
        s->pend = 0;
        s->elems[k].pos = s->text.n;
        return;
    }
    s->waiting = k;
}

/* a paragraph break: a line break in captions, a blank line in the text */
static int para(S *s) {
    if (emit(s, '\n') < 0) return -1;
    if (s->tmpl || s->hidden) return 0;
    s->pend = 3;
    if (s->capturing && buf_put(&s->cap, '\n') < 0) return -1;
    return 0;
}

/* ---------------------------------------------------------------- character references */
static const Py_UCS4 C1[32] = {
    0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D,
    0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A,
    0x0153, 0x9D, 0x017E, 0x0178};

typedef int (*PutFn)(void *ctx, Py_UCS4 c);


static int put_text(void *ctx, Py_UCS4 c) { return emit((S *)ctx, c); }
static int put_buf(void *ctx, Py_UCS4 c) { return buf_put((Buf *)ctx, c); }

/* ---------------------------------------------------------------- elements */
/* room for one more item in a growable array of `size`-byte items (doubling, from `first`) */
static int grow_array(void **p, Py_ssize_t n, Py_ssize_t *cap, size_t size, Py_ssize_t first) {
    if (n < *cap) return 0;
    Py_ssize_t c = *cap ? *cap * 2 : first;
    void *q = PyMem_Realloc(*p, c * size);
    if (!q) { PyErr_NoMemory(); return -1; }
    *p = q;
    *cap = c;
    return 0;
}

/* the innermost open <figure>, or -1 */
static int innermost_figure(S *s) {
    for (int d = s->depth - 1; d >= 0; d--)
        if (s->stack[d].flags & F_FIGURE) return s->stack[d].fig;
    return -1;
}

static int new_elem(S *s, PyObject *tag, PyObject *attrs, int parent) {
    if (grow_array((void **)&s->elems, s->nelems, &s->elemcap, sizeof(Elem), 64) < 0) return -1;
    Elem *e = &s->elems[s->nelems];
    Py_INCREF(tag);
    e->tag = tag;
    e->attrs = attrs;
    e->pos = -1;
    e->parent = parent;
    e->fig = innermost_figure(s);
    e->region = s->depth ? s->stack[s->depth - 1].region : R_NONE;
    return (int)s->nelems++;
}

static PyObject *attrs_dict(S *s) {
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    for (int a = 0; a < s->nattrs; a++) {
        Attr *at = &s->attrs[a];
        PyObject *k = buf_str(&s->vals, at->nstart, at->nlen);
        PyObject *v = buf_str(&s->vals, at->vstart, at->vlen);
        if (!k || !v || PyDict_SetItem(d, k, v) < 0) {
            Py_XDECREF(k); Py_XDECREF(v); Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(k);
        Py_DECREF(v);
    }
    return d;
}

static Attr *attr(S *s, const char *lit) {
    Py_ssize_t len = (Py_ssize_t)strlen(lit);
    for (int a = 0; a < s->nattrs; a++) {
        Attr *at = &s->attrs[a];
        if (at->nlen != len) continue;
        const Py_UCS4 *nm = s->vals.p + at->nstart;
        Py_ssize_t t = 0;
        while (t < len && nm[t] == (Py_UCS4)(unsigned char)lit[t]) t++;
        if (t == len) return at;
    }
    return NULL;
}

static PyObject *attr_str(S *s, const char *lit) {
    Attr *a = attr(s, lit);
    if (!a) return NULL;
    return buf_str(&s->vals, a->vstart, a->vlen);
}

/* attribute value equals lit, ASCII case-insensitively or exactly */
static int attr_eq(S *s, const char *lit, const char *want, int nocase) {
    Attr *a = attr(s, lit);
    if (!a || a->vlen != (Py_ssize_t)strlen(want)) return 0;
    for (Py_ssize_t t = 0; t < a->vlen; t++) {
        Py_UCS4 c = s->vals.p[a->vstart + t];
        if (nocase ? lower(c) != want[t] : c != (Py_UCS4)(unsigned char)want[t]) return 0;
    }
    return 1;
}

/* kind of a link by its file extension (the first ".ext" before '?' or the end; fragment dropped) */
static PyObject *link_kind(S *s) {
    Attr *a = attr(s, "href");
    if (!a || a->vlen == 0) return NULL;
    const Py_UCS4 *v = s->vals.p + a->vstart;
    Py_ssize_t n = a->vlen;
    for (Py_ssize_t t = 0; t < n; t++)
        if (v[t] == '#') { n = t; break; }
    for (Py_ssize_t t = 0; t < n; t++) {
        if (v[t] != '.') continue;
        Py_ssize_t e = t + 1;
        char ext[8];
        int len = 0;
        while (e < n && len < 6) {
            char c = lower(v[e]);
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) break;
            ext[len++] = c;
            e++;
        }
        if (len < 2 || len > 5) continue;
        if (e < n && v[e] != '?') continue;
        ext[len] = 0;
        return PyDict_GetItemString(EXTS, ext); /* borrowed; NULL: not a media extension */
    }
    return NULL;
}

/* ---------------------------------------------------------------- the open-element stack */
static void pop_entry(S *s) {
    Entry *e = &s->stack[--s->depth];
    if (e->flags & F_TEMPLATE) s->tmpl--;
    if (e->flags & F_FOREIGN) s->foreign--;
    if (e->flags & F_HIDDEN) s->hidden--;
    if (e->flags & F_TITLE) {
        s->titling = 0;
        if (!s->title_obj) s->title_obj = buf_str(&s->title, 0, s->title.n);
        if (!s->title_obj) PyErr_Clear();
    }
    if (e->flags & F_CAPTION) {
        s->capturing = 0;
        PyObject *cap = buf_str(&s->cap, 0, s->cap.n);
        s->cap.n = 0;
        if (cap) {
            for (Py_ssize_t f = 0; f < s->nfigs; f++)
                if (s->figs[f].state == 2) {
                    s->figs[f].state = 1;
                    Py_INCREF(cap);
                    s->figs[f].caption = cap;
                }
            Py_DECREF(cap);
        } else {
            PyErr_Clear();
        }
    }
}

static void push(S *s, const char *nm, int len, int flags, int elem, int fig) {
    if (s->depth >= MAX_DEPTH) return;
    Entry *e = &s->stack[s->depth++];
    int l = len < TAG_MAX ? len : TAG_MAX - 1;
    memcpy(e->name, nm, l);
    e->nlen = len;
    e->flags = flags;
    e->elem = elem;
    e->fig = fig;
    e->kf = s->kf;
    int parent = s->depth > 1 ? s->stack[s->depth - 2].region : R_NONE;
    e->region = s->tmpl ? parent : combine(parent, s->label);
    if (e->region == R_ARTICLE && !s->tmpl) s->has_main = 1;
    if (flags & F_TEMPLATE) s->tmpl++;
    if (flags & F_FOREIGN) s->foreign++;
    if (flags & F_HIDDEN) s->hidden++;
}

static int find_open(S *s, const char *nm, int len, int limit) {
    int lo = limit > 0 && s->depth > limit ? s->depth - limit : 0;
    int l = len < TAG_MAX ? len : TAG_MAX - 1;
    for (int d = s->depth - 1; d >= lo; d--)
        if (s->stack[d].nlen == len && memcmp(s->stack[d].name, nm, l) == 0) return d;
    return -1;
}

/* the open element an end tag closes, or -1 when the tree builder ignores it: a special element is
 * closed only within its scope (a list item within its list, nothing across a table cell); any other
 * element only above the nearest special one; a formatting element whose content holds a special
 * one is left open (the adoption agency keeps that content where it is) */
static int find_end(S *s, const char *nm, int len, int kf) {
    if (s->foreign) return find_open(s, nm, len, 0);
    int li = NAME_IS(nm, len, "li"), p = NAME_IS(nm, len, "p");
    int special_between = 0;
    for (int d = s->depth - 1; d >= 0; d--) {
        Entry *e = &s->stack[d];
        if (e->nlen == len && len < TAG_MAX && memcmp(e->name, nm, len) == 0)
            return (kf & K_FORMATTING) && special_between ? -1 : d;
        int ef = e->kf;
        if (kf & K_SPECIAL) {
            if (ef & K_SCOPE) return -1;
            if (li && (NAME_IS(e->name, e->nlen, "ul") || NAME_IS(e->name, e->nlen, "ol"))) return -1;
            if (p && NAME_IS(e->name, e->nlen, "button")) return -1;
        } else if (ef & K_SPECIAL) {
            if (!(kf & K_FORMATTING)) return -1;
            special_between = 1;
        }
    }
    return -1;
}

/* the open list item a new <li> (or <dd>/<dt>) closes: above the nearest special element other
 * than address, div and p (a nested list keeps its parent's item open) */
static int find_item(S *s, const char *nm, int len) {
    int dl = !NAME_IS(nm, len, "li");
    for (int d = s->depth - 1; d >= 0; d--) {
        Entry *e = &s->stack[d];
        if (dl ? NAME_IS(e->name, e->nlen, "dd") || NAME_IS(e->name, e->nlen, "dt") : NAME_IS(e->name, e->nlen, "li"))
            return d;
        if ((e->kf & K_SPECIAL) && !NAME_IS(e->name, e->nlen, "address") &&
            !NAME_IS(e->name, e->nlen, "div") && !NAME_IS(e->name, e->nlen, "p"))
            return -1;
    }
    return -1;
}

/* where a new cell (row: a new row) goes: the depth to pop to (above the open row, or above the
 * table or its section), or -1 when no table is open (the tag is ignored) */
static int find_row_context(S *s, int row) {
    for (int d = s->depth - 1; d >= 0; d--) {
        Entry *e = &s->stack[d];
        if (!row && NAME_IS(e->name, e->nlen, "tr")) return d + 1;
        if (NAME_IS(e->name, e->nlen, "table") || NAME_IS(e->name, e->nlen, "tbody") ||
            NAME_IS(e->name, e->nlen, "thead") || NAME_IS(e->name, e->nlen, "tfoot"))
            return d + 1;
        if (NAME_IS(e->name, e->nlen, "template")) return -1;
    }
    return -1;
}

static void pop_to(S *s, int d) {
    while (s->depth > d) pop_entry(s);
}











/* ---------------------------------------------------------------- tokenizer, per string width */
#define FN_(a, b) a##b
#define FN2(a, b) FN_(a, b)
#define FN(name) FN2(name, SUF)
#define CH Py_UCS1
#define SUF _1
#include "_scan_body.h"
#undef CH
#undef SUF
#define CH Py_UCS2
#define SUF _2
#include "_scan_body.h"
#undef CH
#undef SUF
#define CH Py_UCS4
#define SUF _4
#include "_scan_body.h"
#undef CH
#undef SUF

static void state_free(S *s) {
    PyMem_Free(s->text.p);
    PyMem_Free(s->cap.p);
    PyMem_Free(s->title.p);
    PyMem_Free(s->vals.p);
    for (Py_ssize_t e = 0; e < s->nelems; e++) {
        Py_XDECREF(s->elems[e].tag);
        Py_XDECREF(s->elems[e].attrs);
    }
    PyMem_Free(s->elems);
    for (Py_ssize_t f = 0; f < s->nfigs; f++) Py_XDECREF(s->figs[f].caption);
    PyMem_Free(s->figs);
    PyMem_Free(s->regs);
    Py_XDECREF(s->og);
    Py_XDECREF(s->title_obj);
    Py_XDECREF(s->lang);
    Py_XDECREF(s->xml_lang);
    Py_XDECREF(s->meta_lang);
    Py_XDECREF(s->base);
}

static PyObject *opt(PyObject *o) {
    if (o) { Py_INCREF(o); return o; }
    Py_RETURN_NONE;
}

static PyObject *scan(PyObject *self, PyObject *args) {
    PyObject *html;
    Py_ssize_t max_chars;
    if (!PyArg_ParseTuple(args, "Un", &html, &max_chars)) return NULL;
    if (!ENTITIES || !EXTS) {
        PyErr_SetString(PyExc_RuntimeError, "wdb.html._scan.setup() was not called");
        return NULL;
    }
    S *s = PyMem_Calloc(1, sizeof(S));
    if (!s) return PyErr_NoMemory();
    int kind = PyUnicode_KIND(html);
    Py_ssize_t n = PyUnicode_GET_LENGTH(html);
    const void *u = PyUnicode_DATA(html);
    void *copy = NULL;
    /* input stream preprocessing: CR LF and CR become LF (in a copy of the same width) */
    if (PyUnicode_FindChar(html, '\r', 0, n, 1) >= 0) {
        copy = PyMem_Malloc(n * kind);
        if (!copy) { PyMem_Free(s); return PyErr_NoMemory(); }
        Py_ssize_t w = 0;
        for (Py_ssize_t r = 0; r < n; r++) {
            Py_UCS4 c = PyUnicode_READ(kind, u, r);
            if (c == '\r') {
                c = '\n';
                if (r + 1 < n && PyUnicode_READ(kind, u, r + 1) == '\n') r++;
            }
            PyUnicode_WRITE(kind, copy, w, c);
            w++;
        }
        n = w;
        u = copy;
    }
    s->u = u;
    s->n = n;
    s->max = max_chars;
    s->waiting = -1;
    s->last_region = -1;
    s->og = PyList_New(0);
    PyObject *result = NULL;
    if (!s->og) goto done;
    int r = kind == PyUnicode_1BYTE_KIND ? scan_loop_1(s) : kind == PyUnicode_2BYTE_KIND ? scan_loop_2(s) : scan_loop_4(s);
    if (r < 0 || PyErr_Occurred()) goto done;
    if (s->waiting >= 0) resolve_waiting(s, 0);
    while (s->depth) pop_entry(s);
    /* no trailing white space (the separator written before items at the very end) */
    while (!s->capped && s->text.n && is_space(s->text.p[s->text.n - 1])) s->text.n--;
    for (Py_ssize_t e = 0; e < s->nelems; e++)
        if (s->elems[e].pos > s->text.n) s->elems[e].pos = s->text.n;
    if (PyErr_Occurred()) goto done;
    {
        PyObject *elems = PyList_New(s->nelems);
        if (!elems) goto done;
        for (Py_ssize_t e = 0; e < s->nelems; e++) {
            Elem *el = &s->elems[e];
            PyObject *pos = el->pos >= 0 ? PyLong_FromSsize_t(el->pos) : (Py_INCREF(Py_None), Py_None);
            PyObject *region = el->region ? REGION_OBJ[el->region] : Py_None;
            PyObject *t = Py_BuildValue("(OOOiiO)", el->tag, el->attrs, pos, el->parent, el->fig, region);
            Py_XDECREF(pos);
            if (!t) { Py_DECREF(elems); goto done; }
            PyList_SET_ITEM(elems, e, t);
        }
        PyObject *figs = PyList_New(s->nfigs);
        if (!figs) { Py_DECREF(elems); goto done; }
        for (Py_ssize_t f = 0; f < s->nfigs; f++) {
            PyObject *cap = s->figs[f].caption ? s->figs[f].caption : Py_None;
            PyObject *t = Py_BuildValue("(iO)", s->figs[f].parent, cap);
            if (!t) { Py_DECREF(elems); Py_DECREF(figs); goto done; }
            PyList_SET_ITEM(figs, f, t);
        }
        PyObject *regs = PyList_New(s->nreg);
        if (!regs) { Py_DECREF(elems); Py_DECREF(figs); goto done; }
        for (Py_ssize_t r = 0; r < s->nreg; r++) {
            int g = s->regs[r].region;
            PyObject *t = Py_BuildValue("(nO)", s->regs[r].pos, g ? REGION_OBJ[g] : Py_None);
            if (!t) { Py_DECREF(elems); Py_DECREF(figs); Py_DECREF(regs); goto done; }
            PyList_SET_ITEM(regs, r, t);
        }
        PyObject *text = buf_str(&s->text, 0, s->text.n);
        if (!text) { Py_DECREF(elems); Py_DECREF(figs); Py_DECREF(regs); goto done; }
        result = Py_BuildValue("(NONNNNNNNOON)", text, s->capped ? Py_True : Py_False, opt(s->title_obj),
                               opt(s->lang), opt(s->xml_lang), opt(s->meta_lang), opt(s->base), elems, figs,
                               s->og, s->has_main ? Py_True : Py_False, regs);
    }
done:
    PyMem_Free(copy);
    state_free(s);
    PyMem_Free(s);
    return result;
}

/* ---------------------------------------------------------------- windows */
static PyObject *windows(PyObject *self, PyObject *args) {
    PyObject *text, *positions;
    Py_ssize_t words;
    if (!PyArg_ParseTuple(args, "UOn", &text, &positions, &words)) return NULL;
    if (words < 1) words = 1;
    PyObject *seq = PySequence_Fast(positions, "positions must be a sequence");
    if (!seq) return NULL;
    Py_ssize_t m = PySequence_Fast_GET_SIZE(seq);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    /* the words of the text, once: starts and ends */
    Py_ssize_t cs = 0, ce = 0, nw = 0;
    Py_ssize_t *ws = NULL, *we = NULL;
    PyObject *out = NULL;
    for (Py_ssize_t k = 0; k < n;) {
        while (k < n && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, k))) k++;
        if (k >= n) break;
        Py_ssize_t b = k;
        while (k < n && !Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, k))) k++;
        if (grow_array((void **)&ws, nw, &cs, sizeof(Py_ssize_t), 1024) < 0 ||
            grow_array((void **)&we, nw, &ce, sizeof(Py_ssize_t), 1024) < 0)
            goto done;
        ws[nw] = b;
        we[nw++] = k;
    }
    out = PyList_New(m);
    if (!out) goto done;
    for (Py_ssize_t t = 0; t < m; t++) {
        Py_ssize_t pos = PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(seq, t));
        if (pos == -1 && PyErr_Occurred()) { Py_CLEAR(out); goto done; }
        if (pos < 0) pos = 0;
        if (pos > n) pos = n;
        /* after: from the first word ending after pos (a word cut by pos counts), `words` words */
        Py_ssize_t a = 0, b = nw;
        while (a < b) { Py_ssize_t c = (a + b) / 2; if (we[c] > pos) b = c; else a = c + 1; }
        Py_ssize_t hi = a < nw ? we[a + words - 1 < nw ? a + words - 1 : nw - 1] : pos;
        /* before: back from the last word starting before pos, `words` words */
        a = 0, b = nw;
        while (a < b) { Py_ssize_t c = (a + b) / 2; if (ws[c] < pos) a = c + 1; else b = c; }
        Py_ssize_t lo = a > 0 ? ws[a - words > 0 ? a - words : 0] : pos;
        PyObject *pair = Py_BuildValue("(nn)", lo, hi);
        if (!pair) { Py_CLEAR(out); goto done; }
        PyList_SET_ITEM(out, t, pair);
    }
done:
    PyMem_Free(ws);
    PyMem_Free(we);
    Py_DECREF(seq);
    return out;
}

/* tokens(text) -> (words, starts, ends): the runs of word characters, as re's \w+ finds them;
 * starts and ends are array('q') buffers (bisect and indexing work on them, with no int objects) */
static PyObject *ARRAY = NULL;

static PyObject *as_array(Py_ssize_t *v, Py_ssize_t n) {
    PyObject *b = PyBytes_FromStringAndSize((const char *)v, n * (Py_ssize_t)sizeof(Py_ssize_t));
    if (!b) return NULL;
    PyObject *a = PyObject_CallFunction(ARRAY, "sO", sizeof(Py_ssize_t) == 8 ? "q" : "l", b);
    Py_DECREF(b);
    return a;
}

/* re's \w: alphanumeric (str.isalnum) or '_', with a table-free test for ASCII */
static inline int is_word(Py_UCS4 c) {
    if (c < 128) return is_alnum(c) || c == '_';
    return Py_UNICODE_ISALNUM(c);
}

static PyObject *tokens(PyObject *self, PyObject *args) {
    PyObject *text;
    if (!PyArg_ParseTuple(args, "U", &text)) return NULL;
    if (!ARRAY) {
        PyObject *mod = PyImport_ImportModule("array");
        if (!mod) return NULL;
        ARRAY = PyObject_GetAttrString(mod, "array");
        Py_DECREF(mod);
        if (!ARRAY) return NULL;
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    Py_ssize_t cs = 0, ce = 0, nw = 0;
    Py_ssize_t *ws = NULL, *we = NULL;
    PyObject *words = PyList_New(0), *result = NULL;
    if (!words) goto done;
    Py_ssize_t k = 0;
    while (k < n) {
        Py_UCS4 c = PyUnicode_READ(kind, data, k);
        if (!is_word(c)) { k++; continue; }
        Py_ssize_t b = k++;
        while (k < n && is_word(PyUnicode_READ(kind, data, k))) k++;
        if (grow_array((void **)&ws, nw, &cs, sizeof(Py_ssize_t), 1024) < 0 ||
            grow_array((void **)&we, nw, &ce, sizeof(Py_ssize_t), 1024) < 0)
            goto done;
        ws[nw] = b;
        we[nw++] = k;
        PyObject *w = PyUnicode_Substring(text, b, k);
        if (!w || PyList_Append(words, w) < 0) { Py_XDECREF(w); goto done; }
        Py_DECREF(w);
    }
    {
        PyObject *sa = as_array(ws, nw), *ea = as_array(we, nw);
        if (sa && ea) result = Py_BuildValue("(ONN)", words, sa, ea);
        else { Py_XDECREF(sa); Py_XDECREF(ea); }
    }
done:
    PyMem_Free(ws);
    PyMem_Free(we);
    Py_XDECREF(words);
    return result;
}

static PyObject *setup(PyObject *self, PyObject *args) {
    PyObject *ent, *ext;
    if (!PyArg_ParseTuple(args, "O!O!", &PyDict_Type, &ent, &PyDict_Type, &ext)) return NULL;
    Py_XDECREF(ENTITIES);
    Py_XDECREF(EXTS);
    Py_INCREF(ent);
    Py_INCREF(ext);
    ENTITIES = ent;
    EXTS = ext;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, "scan(html, max_chars) -> text, media elements and page facts"},
    {"windows", windows, METH_VARARGS, "windows(text, positions, words) -> [(lo, hi)]"},
    {"tokens", tokens, METH_VARARGS, "tokens(text) -> (words, starts, ends) of the \\w+ runs"},
    {"setup", setup, METH_VARARGS, "setup(entities, extensions): the tables the scanner reads"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_scan", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__scan(void) {
#define INTERN(var, s) if (!(var = PyUnicode_InternFromString(s))) return NULL
    INTERN(T_IMG, "img");
    INTERN(T_AUDIO, "audio");
    INTERN(T_VIDEO, "video");
    INTERN(T_SOURCE, "source");
    INTERN(T_TRACK, "track");
    INTERN(T_IFRAME, "iframe");
    INTERN(T_EMBED, "embed");
    INTERN(T_OBJECT, "object");
    INTERN(T_A, "a");
    INTERN(T_PICTURE, "picture");
    tag_add(BLOCK, K_BLOCK);
    tag_add(VOID, K_VOID);
    tag_add(HEADISH, K_HEADISH);
    tag_add(BREAKOUT, K_BREAKOUT);
    tag_add(AUTOCLOSE, K_AUTOCLOSE);
    tag_add(COLLECT, K_COLLECT);
    tag_add(HEADNOSCRIPT, K_HEADNOSCRIPT);
    tag_add(PARA, K_PARA);
    tag_add(SPECIAL, K_SPECIAL);
    tag_add(SCOPE, K_SCOPE);
    tag_add(FORMATTING, K_FORMATTING);
    for (const struct Keyword *w = KEYWORDS; w->word; w++) kw_add(w->word, w->label);
    for (int r = 0; r < R_COUNT; r++) INTERN(REGION_OBJ[r], REGION_NAMES[r]);
    return PyModule_Create(&module);
}
