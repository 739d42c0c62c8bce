/* The tokenizer, included by _scan.c once per string width: CH is the character type of the
 * input (Py_UCS1, Py_UCS2 or Py_UCS4) and FN(name) gives each function its width's name. */

static int FN(start_tag)(S *s, const char *nm, int len, Py_ssize_t *kp);

/* index of the next c in u[k:n], or n (memchr for one-byte strings) */
static inline Py_ssize_t FN(find)(const CH *u, Py_ssize_t k, Py_ssize_t n, CH c) {
    if (sizeof(CH) == 1) {
        const CH *p = k < n ? memchr(u + k, c, n - k) : NULL;
        return p ? p - u : n;
    }
    while (k < n && u[k] != c) k++;
    return k;
}

/* the text u[i:e] (no '<' or '&' in it): a tight loop for the common state, emit() otherwise */
static int FN(text_run)(S *s, Py_ssize_t i, Py_ssize_t e) {
    const CH *u = (const CH *)s->u;
    if (s->tmpl || s->hidden || s->capturing || s->titling || s->waiting >= 0 || s->capped ||
        s->text.n + 2 * (e - i) + 2 >= s->max) {
        for (; i < e; i++)
            if (emit(s, u[i]) < 0) return -1;
        return 0;
    }
    if (buf_grow(&s->text, 2 * (e - i) + 2) < 0) return -1; /* a blank line and a character: 3 */
    Py_UCS4 *out = s->text.p;
    Py_ssize_t n = s->text.n;
    int pend = s->pend, body = s->body;
    int region = top_region(s); /* no tag in a run: one region */
    for (; i < e; i++) {
        Py_UCS4 c = u[i];
        if (c == ' ' || c == '\n' || c == '\t') {
            if (c == '\n') { if (pend < 2) pend = 2; }
            else if (!pend) pend = 1;
            continue;
        }
        if (c < 0x20 || (c >= 0x80 && (is_space(c) || (c >= 0xE000 && c <= 0xE004)))) {
            s->text.n = n;
            s->pend = pend;
            s->body = body;
            if (emit(s, c) < 0) return -1;
            out = s->text.p;
            n = s->text.n;
            pend = s->pend;
            body = s->body;
            continue;
        }
        body = 1;
        if (pend) {
            if (n && !is_space(out[n - 1])) {
                if (pend == 3) out[n++] = '\n';
                out[n++] = pend == 1 ? ' ' : '\n';
            }
            pend = 0;
        }
        if (region != s->last_region && note_region_at(s, region, n) < 0) return -1;
        out[n++] = c;
    }
    s->text.n = n;
    s->pend = pend;
    s->body = body;
    return 0;
}

/* Decode the reference at u[i] == '&'; write its characters with put; return the index after it.
 * in_attr: the attribute-value rule for legacy names without ';'. */
static Py_ssize_t FN(charref)(const CH *u, Py_ssize_t n, Py_ssize_t i, int in_attr, PutFn put, void *ctx) {
    Py_ssize_t j = i + 1;
    if (j < n && u[j] == '#') {
        Py_ssize_t k = j + 1;
        int hex = 0;
        if (k < n && (u[k] == 'x' || u[k] == 'X')) { hex = 1; k++; }
        Py_ssize_t d0 = k;
        unsigned long v = 0;
        while (k < n) {
            Py_UCS4 c = u[k];
            int dv;
            if (c >= '0' && c <= '9') dv = c - '0';
            else if (hex && c >= 'a' && c <= 'f') dv = c - 'a' + 10;
            else if (hex && c >= 'A' && c <= 'F') dv = c - 'A' + 10;
            else break;
            if (v <= 0x10FFFF) v = v * (hex ? 16 : 10) + dv;
            k++;
        }
        if (k == d0) { put(ctx, '&'); return i + 1; } /* "&#" without digits: as text */
        if (k < n && u[k] == ';') k++;
        Py_UCS4 c;
        if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) c = 0xFFFD;
        else if (v >= 0x80 && v <= 0x9F) c = C1[v - 0x80];
        else c = (Py_UCS4)v;
        put(ctx, c);
        return k;
    }
    /* named: the longest name in the table */
    Py_ssize_t k = j;
    while (k < n && k - j < 40 && is_alnum(u[k])) k++;
    int len = (int)(k - j);
    if (len <= 0 || len > 40) { put(ctx, '&'); return i + 1; }
    char name[48];
    for (int t = 0; t < len; t++) name[t] = (char)u[j + t];
    if (k < n && u[k] == ';') {
        name[len] = ';';
        PyObject *v = PyDict_GetItemString(ENTITIES, (name[len + 1] = 0, name));
        if (v) {
            Py_ssize_t m = PyUnicode_GET_LENGTH(v);
            for (Py_ssize_t t = 0; t < m; t++) put(ctx, PyUnicode_READ_CHAR(v, t));
            return k + 1;
        }
    }
    /* legacy names without ';' (at most 6 characters) */
    for (int L = len < 6 ? len : 6; L >= 2; L--) {
        name[L] = 0;
        PyObject *v = PyDict_GetItemString(ENTITIES, name);
        if (v) {
            Py_ssize_t after = j + L;
            if (in_attr && after < n && (u[after] == '=' || is_alnum(u[after]))) break;
            Py_ssize_t m = PyUnicode_GET_LENGTH(v);
            for (Py_ssize_t t = 0; t < m; t++) put(ctx, PyUnicode_READ_CHAR(v, t));
            return after;
        }
    }
    put(ctx, '&');
    return i + 1;
}

/* ---------------------------------------------------------------- region labels */
/* the best label of the class names (or the id) in u[vs:ve]: white-space separated names, each cut
 * into its ASCII letter/digit words */
static int FN(names_label)(const CH *u, Py_ssize_t vs, Py_ssize_t ve) {
    int best = 0, main = 0;
    Py_ssize_t k = vs;
    while (k < ve) {
        while (k < ve && is_ws(u[k])) k++;
        if (k >= ve) break;
        char tok[KW_MAX], all[KW_MAX];
        int labs[16], ntok = 0, tl = 0, total = 0, alllen = 0, over = 0;
        for (;;) {
            Py_UCS4 c = k < ve ? u[k] : ' ';
            if (c < 128 && is_alnum(c)) {
                char l = lower(c);
                if (tl < KW_MAX) tok[tl] = l;
                tl++;
                if (alllen < KW_MAX) all[alllen] = l;
                alllen++;
                total++;
                k++;
                continue;
            }
            if (tl) { /* a word ends */
                if (ntok >= 16) over = 1;
                else labs[ntok++] = tl < KW_MAX ? kw_find(tok, tl) : 0;
                tl = 0;
            }
            if (k >= ve || is_ws(c)) break;
            k++;
        }
        if (over || total > 127 || !ntok) continue; /* a long name: no keyword */
        int l = name_label(labs, ntok, all, alllen);
        if (l == R_MAIN) main = 1;
        else best = better(best, l);
    }
    /* content and boilerplate words in different names ("content-site one-sidebar") describe the
     * layout of a wrapper, not a region */
    return main ? (best ? 0 : R_MAIN) : best;
}

/* class, id and role: the first of each name (as the tree builder keeps duplicates) */
static void FN(label_attr)(S *s, Py_ssize_t ns, Py_ssize_t ne, Py_ssize_t vs, Py_ssize_t ve) {
    const CH *u = (const CH *)s->u;
    char nm[6];
    int len = (int)(ne - ns);
    for (int t = 0; t < len; t++) nm[t] = lower(u[ns + t]);
    if (NAME_IS(nm, len, "class")) {
        if (s->seen_lab & 1) return;
        s->seen_lab |= 1;
        Py_ssize_t n = ve - vs;
        if (n <= 0) { s->lab_class = 0; return; }
        unsigned h = 2166136261u;
        for (Py_ssize_t t = vs; t < ve; t++) h = (h ^ (unsigned)u[t]) * 16777619u;
        h = (h ^ (unsigned)n) & (LCACHE - 1);
        if (s->lcache[h].len == n && memcmp(u + s->lcache[h].start, u + vs, n * sizeof(CH)) == 0) {
            s->lab_class = s->lcache[h].label;
            return;
        }
        s->lab_class = FN(names_label)(u, vs, ve);
        s->lcache[h].start = vs;
        s->lcache[h].len = n;
        s->lcache[h].label = s->lab_class;
    } else if (NAME_IS(nm, len, "id")) {
        if (s->seen_lab & 2) return;
        s->seen_lab |= 2;
        s->lab_id = FN(names_label)(u, vs, ve);
    } else if (NAME_IS(nm, len, "role")) {
        if (s->seen_lab & 4) return;
        s->seen_lab |= 4;
        Py_ssize_t k = vs;
        while (k < ve && is_ws(u[k])) k++;
        char w[16];
        int wl = 0;
        for (; k < ve && !is_ws(u[k]); k++) {
            if (wl >= 15) { wl = 0; break; }
            w[wl++] = lower(u[k]);
        }
        s->lab_role = wl ? role_label(w, wl) : 0;
    }
}

/* ---------------------------------------------------------------- tokenizer */
/* Parse attributes from u[k] to the end of the tag; collect: keep names and decoded values.
 * Returns the index after '>', or n at the end of input (*eof set). */
static Py_ssize_t FN(tag_attrs)(S *s, Py_ssize_t k, int collect, int *selfclosing, int *eof) {
    const CH *u = (const CH *)s->u;
    Py_ssize_t n = s->n;
    s->nattrs = 0;
    s->vals.n = 0;
    s->lab_class = s->lab_id = s->lab_role = s->seen_lab = 0;
    *selfclosing = 0;
    *eof = 0;
    for (;;) {
        while (k < n && is_ws(u[k])) k++;
        if (k >= n) { *eof = 1; return n; }
        if (u[k] == '>') return k + 1;
        if (u[k] == '/') {
            if (k + 1 < n && u[k + 1] == '>') { *selfclosing = 1; return k + 2; }
            k++;
            continue;
        }
        Py_ssize_t ns = k++;
        while (k < n && !is_ws(u[k]) && u[k] != '/' && u[k] != '>' && u[k] != '=') k++;
        Py_ssize_t ne = k;
        while (k < n && is_ws(u[k])) k++;
        Py_ssize_t vs = 0, ve = 0;
        int has = 0;
        if (k < n && u[k] == '=') {
            k++;
            while (k < n && is_ws(u[k])) k++;
            if (k < n && (u[k] == '"' || u[k] == '\'')) {
                Py_UCS4 q = u[k++];
                vs = k;
                k = FN(find)(u, k, n, (CH)q);
                ve = k;
                if (k < n) k++;
                has = 1;
            } else if (k < n && u[k] != '>') {
                vs = k;
                while (k < n && !is_ws(u[k]) && u[k] != '>') k++;
                ve = k;
                has = 1;
            }
        }
        if (collect & 2 && ne - ns >= 2 && ne - ns <= 5 &&
            ((u[ns] | 32) == 'c' || (u[ns] | 32) == 'i' || (u[ns] | 32) == 'r'))
            FN(label_attr)(s, ns, ne, has ? vs : 0, has ? ve : 0);
        if (!(collect & 1) || s->nattrs >= MAX_ATTRS) continue;
        Attr *at = &s->attrs[s->nattrs];
        Py_ssize_t mark = s->vals.n;
        at->nstart = mark;
        at->nlen = ne - ns;
        if (buf_grow(&s->vals, at->nlen) < 0) return -1;
        for (Py_ssize_t t = ns; t < ne; t++) {
            Py_UCS4 c = u[t];
            s->vals.p[s->vals.n++] = (c >= 'A' && c <= 'Z') ? c + 32 : (c ? c : 0xFFFD);
        }
        int dup = 0;
        for (int a = 0; a < s->nattrs && !dup; a++)
            if (s->attrs[a].nlen == at->nlen &&
                memcmp(s->vals.p + s->attrs[a].nstart, s->vals.p + mark, at->nlen * sizeof(Py_UCS4)) == 0)
                dup = 1;
        if (dup) { s->vals.n = mark; continue; }
        at->vstart = s->vals.n;
        if (has) {
            for (Py_ssize_t t = vs; t < ve;) {
                if (u[t] == '&') {
                    /* a reference may not run past the value */
                    t = FN(charref)(u, ve, t, 1, put_buf, &s->vals);
                } else {
                    /* U+E000/U+E001 are the lexbor scan's in-band markers: both scans blank them */
                    Py_UCS4 c = u[t];
                    c = c == 0 ? 0xFFFD : (c >= 0xE000 && c <= 0xE004) ? ' ' : c;
                    if (buf_put(&s->vals, c) < 0) return -1;
                    t++;
                }
            }
        }
        at->vlen = s->vals.n - at->vstart;
        s->nattrs++;
    }
}

/* index of the end tag "</name" (followed by white space, '/' or '>') from k, or n */
static Py_ssize_t FN(find_end_tag)(S *s, Py_ssize_t k, const char *nm, int len) {
    const CH *u = (const CH *)s->u;
    Py_ssize_t n = s->n;
    for (; k + 1 + len < n; k++) {
        k = FN(find)(u, k, n, '<');
        if (k + 1 + len >= n) break;
        if (u[k + 1] != '/') continue;
        int ok = 1;
        for (int t = 0; t < len; t++)
            if (lower(u[k + 2 + t]) != nm[t]) { ok = 0; break; }
        if (!ok) continue;
        Py_ssize_t e = k + 2 + len;
        if (e >= n || is_ws(u[e]) || u[e] == '/' || u[e] == '>') return k;
    }
    return n;
}

static int FN(match_tag)(S *s, Py_ssize_t k, const char *lit, int len) {
    /* "<script" / "</script" at k, followed by white space, '/' or '>' */
    const CH *u = (const CH *)s->u;
    if (k + len >= s->n) return 0;
    for (int t = 0; t < len; t++)
        if (lower(u[k + t]) != lit[t]) return 0;
    Py_UCS4 e = u[k + len];
    return is_ws(e) || e == '/' || e == '>';
}

/* the end of a script: "</script", minding the escaped states of "<!-- <script> </script> -->" */
static Py_ssize_t FN(find_script_end)(S *s, Py_ssize_t k) {
    const CH *u = (const CH *)s->u;
    Py_ssize_t n = s->n;
    int st = 0; /* 0 data, 1 escaped, 2 double escaped */
    for (; k < n; k++) {
        if (st == 0 && (k = FN(find)(u, k, n, '<')) >= n) break;
        Py_UCS4 c = u[k];
        if (c == '<') {
            if (st == 0 && k + 3 < n && u[k + 1] == '!' && u[k + 2] == '-' && u[k + 3] == '-') {
                k += 3;
                if (k + 1 < n && u[k + 1] == '>') k++;
                else st = 1;
            } else if (st < 2 && FN(match_tag)(s, k, "</script", 8)) {
                return k;
            } else if (st == 1 && FN(match_tag)(s, k, "<script", 7)) {
                st = 2;
                k += 6;
            } else if (st == 2 && FN(match_tag)(s, k, "</script", 8)) {
                st = 1;
                k += 7;
            }
        } else if (c == '-' && st && k + 2 < n && u[k + 1] == '-' && u[k + 2] == '>') {
            st = 0;
            k += 2;
        }
    }
    return n;
}

/* after an end tag's name: skip to after its '>' */
static Py_ssize_t FN(skip_tag)(S *s, Py_ssize_t k) {
    int sc, eof;
    return FN(tag_attrs)(s, k, 0, &sc, &eof);
}

static Py_ssize_t FN(lt)(S *s, Py_ssize_t i) {
    const CH *u = (const CH *)s->u;
    Py_ssize_t n = s->n;
    Py_ssize_t j = i + 1;
    if (j >= n) { emit(s, '<'); return n; }
    Py_UCS4 c = u[j];
    if (c == '!') {
        if (j + 2 < n && u[j + 1] == '-' && u[j + 2] == '-') {
            Py_ssize_t k = j + 3;
            if (k < n && u[k] == '>') return k + 1;
            if (k + 1 < n && u[k] == '-' && u[k + 1] == '>') return k + 2;
            for (; k < n; k++) {
                if (u[k] != '-' || k + 2 >= n || u[k + 1] != '-') continue;
                if (u[k + 2] == '>') return k + 3;
                if (u[k + 2] == '!' && k + 3 < n && u[k + 3] == '>') return k + 4;
            }
            return n;
        }
        if (s->foreign && j + 7 < n && u[j + 1] == '[' && u[j + 2] == 'C' && u[j + 3] == 'D' && u[j + 4] == 'A' &&
            u[j + 5] == 'T' && u[j + 6] == 'A' && u[j + 7] == '[') {
            Py_ssize_t k = j + 8;
            for (; k < n; k++) {
                if (u[k] == ']' && k + 2 < n && u[k + 1] == ']' && u[k + 2] == '>') return k + 3;
                emit(s, u[k]);
            }
            return n;
        }
        Py_ssize_t k = j;
        while (k < n && u[k] != '>') k++;
        return k < n ? k + 1 : n;
    }
    if (c == '?') {
        Py_ssize_t k = j;
        while (k < n && u[k] != '>') k++;
        return k < n ? k + 1 : n;
    }
    if (c == '/') {
        Py_ssize_t k = j + 1;
        if (k < n && u[k] == '>') return k + 1;
        if (k >= n) { emit(s, '<'); emit(s, '/'); return n; }
        if (!is_alpha(u[k])) {
            while (k < n && u[k] != '>') k++;
            return k < n ? k + 1 : n;
        }
        char nm[TAG_MAX];
        int len = 0;
        for (; k < n && !is_ws(u[k]) && u[k] != '/' && u[k] != '>'; k++, len++)
            if (len < TAG_MAX - 1) nm[len] = lower(u[k]);
        int sc, eof;
        Py_ssize_t after = FN(tag_attrs)(s, k, 0, &sc, &eof);
        if (after < 0) return -1;
        int ekf = len < TAG_MAX ? tag_flags(nm, len) : 0;
        int d = len < TAG_MAX ? find_end(s, nm, len, ekf) : -1;
        if (d >= 0) pop_to(s, d);
        if (!eof && (ekf & K_BLOCK) && emit(s, '\n') < 0) return -1; /* a block's end ends its line */
        if (!eof && (ekf & K_PARA) && para(s) < 0) return -1;
        return after;
    }
    if (!is_alpha(c)) { emit(s, '<'); return j; }
    char nm[TAG_MAX];
    int len = 0;
    Py_ssize_t k = j;
    for (; k < n && !is_ws(u[k]) && u[k] != '/' && u[k] != '>'; k++, len++)
        if (len < TAG_MAX - 1) nm[len] = lower(u[k]);
    int l = len < TAG_MAX ? len : TAG_MAX - 1;
    nm[l] = 0;
    if (len > TAG_MAX - 1) { /* no tag we know: skip it */
        return FN(skip_tag)(s, k);
    }
    if (FN(start_tag)(s, nm, len, &k) < 0) return -1;
    return k;
}

/* RCDATA or raw text from k up to "</name": decoded (rcdata) or not, into put; returns after the end tag */
static Py_ssize_t FN(text_element)(S *s, Py_ssize_t k, const char *nm, int len, int rcdata, PutFn put, void *ctx) {
    Py_ssize_t e = NAME_IS(nm, len, "script") ? FN(find_script_end)(s, k) : FN(find_end_tag)(s, k, nm, len);
    if (put) {
        for (Py_ssize_t t = k; t < e;) {
            if (rcdata && ((const CH *)s->u)[t] == '&') {
                t = FN(charref)((const CH *)s->u, e, t, 0, put, ctx);
            } else {
                put(ctx, ((const CH *)s->u)[t]);
                t++;
            }
        }
    }
    if (e >= s->n) return s->n;
    return FN(skip_tag)(s, e + 2 + len);
}

static int FN(start_tag)(S *s, const char *nm, int len, Py_ssize_t *kp) {
    int kf = tag_flags(nm, len);
    s->kf = kf;
    int collect = kf & K_COLLECT;
    int sc, eof;
    /* 1: keep the attributes; 2: read the region words (only elements that can have children) */
    int words = ((kf & K_VOID) && !s->foreign) || s->tmpl ? 0 : 2;
    Py_ssize_t k = FN(tag_attrs)(s, *kp, (collect ? 1 : 0) | words, &sc, &eof);
    if (k < 0) return -1;
    *kp = k;
    if (eof) return 0; /* a tag cut off by the end of input is dropped */
    if (NAME_IS(nm, len, "html") || NAME_IS(nm, len, "body")) {
        s->label = 0;
    } else {
        s->label = tag_label(nm, len);
        if (!s->label) s->label = s->lab_role;
        if (!s->label) s->label = better(s->lab_class, s->lab_id);
    }
    if (s->foreign) {
        if (kf & K_BREAKOUT) {
            while (s->foreign && s->depth) pop_entry(s);
        } else {
            if (NAME_IS(nm, len, "script") || NAME_IS(nm, len, "style")) {
                if (!sc) *kp = FN(text_element)(s, k, nm, len, 0, NULL, NULL);
                return 0;
            }
            if (NAME_IS(nm, len, "a") && !s->tmpl) {
                PyObject *kind = link_kind(s);
                if (kind) {
                    PyObject *d = attrs_dict(s);
                    if (!d) return -1;
                    int e = new_elem(s, T_A, d, -1);
                    if (e < 0) return -1;
                    marker(s, e);
                }
            }
            if (NAME_IS(nm, len, "title") && !sc && !s->title_obj && !s->titling && !s->tmpl &&
                s->depth < MAX_DEPTH) {
                /* the first <title> in document order is the page's, an SVG one included */
                s->titling = 1;
                s->title.n = 0;
                push(s, nm, len, F_TITLE, -1, -1);
                return 0;
            }
            if (!sc) push(s, nm, len, 0, -1, -1);
            return 0;
        }
    }
    if (s->depth && (s->stack[s->depth - 1].flags & F_HEADNOSCRIPT) && !(kf & K_HEADNOSCRIPT)) {
        pop_to(s, s->depth - 1); /* <noscript> in <head> holds only link, meta and style */
        s->body = 1;
    }
    if (!s->body && !(kf & K_HEADISH)) s->body = 1;
    /* optional end tags */
    int cell = 0; /* a table cell or row: only inside a table (elsewhere the tree builder ignores the tag) */
    if (kf & K_AUTOCLOSE) {
        int d;
        if (NAME_IS(nm, len, "li") || NAME_IS(nm, len, "dd") || NAME_IS(nm, len, "dt")) {
            d = find_item(s, nm, len);
        } else if (NAME_IS(nm, len, "td") || NAME_IS(nm, len, "th") || NAME_IS(nm, len, "tr")) {
            cell = find_row_context(s, nm[1] == 'r');
            d = cell > 0 ? cell : -1;
        } else {
            d = find_open(s, nm, len, 4);
        }
        if (d >= 0) pop_to(s, d);
    }
    int block = kf & K_BLOCK;
    if (block) {
        if (s->depth && NAME_IS(s->stack[s->depth - 1].name, s->stack[s->depth - 1].nlen, "p") &&
            !NAME_IS(nm, len, "br"))
            pop_to(s, s->depth - 1);
        if (emit(s, '\n') < 0) return -1;
        if ((kf & K_PARA) && para(s) < 0) return -1;
    }
    int parent = s->depth ? s->stack[s->depth - 1].elem : -1;
    int tm = s->tmpl;
    /* raw text and RCDATA elements */
    if (NAME_IS(nm, len, "noscript")) { /* parsed as markup (scripting off), its text dropped */
        push(s, nm, len, F_HIDDEN | (s->body ? 0 : F_HEADNOSCRIPT), -1, -1);
        return 0;
    }
    if (NAME_IS(nm, len, "script") || NAME_IS(nm, len, "style")) {
        *kp = FN(text_element)(s, k, nm, len, 0, NULL, NULL);
        return 0;
    }
    if (NAME_IS(nm, len, "title")) {
        /* the first title is the page's; a title after the body has begun is also text */
        s->title.n = 0;
        *kp = FN(text_element)(s, k, nm, len, 1, put_buf, &s->title);
        if (!s->title_obj && !tm) {
            s->title_obj = buf_str(&s->title, 0, s->title.n);
            if (!s->title_obj) return -1;
        }
        if (s->body && !tm)
            for (Py_ssize_t t = 0; t < s->title.n; t++)
                if (emit(s, s->title.p[t]) < 0) return -1;
        return 0;
    }
    if (NAME_IS(nm, len, "textarea")) {
        *kp = FN(text_element)(s, k, nm, len, 1, tm ? NULL : put_text, s);
        return 0;
    }
    if (NAME_IS(nm, len, "xmp") || NAME_IS(nm, len, "noembed") || NAME_IS(nm, len, "noframes")) {
        *kp = FN(text_element)(s, k, nm, len, 0, tm ? NULL : put_text, s);
        return 0;
    }
    if (NAME_IS(nm, len, "plaintext")) {
        for (Py_ssize_t t = k; t < s->n; t++) emit(s, ((const CH *)s->u)[t]);
        *kp = s->n;
        return 0;
    }
    if (NAME_IS(nm, len, "template")) {
        push(s, nm, len, F_TEMPLATE, -1, -1);
        return 0;
    }
    if (NAME_IS(nm, len, "svg") || NAME_IS(nm, len, "math")) {
        if (!sc) push(s, nm, len, F_FOREIGN, -1, -1);
        return 0;
    }
    if (tm) {
        if (NAME_IS(nm, len, "iframe")) *kp = FN(text_element)(s, k, nm, len, 0, NULL, NULL);
        else if (!(kf & K_VOID)) push(s, nm, len, 0, -1, -1);
        return 0;
    }
    if (collect) {
        PyObject *tag = NULL;
        int mark = 0, elem = -1;
        if (NAME_IS(nm, len, "img") || NAME_IS(nm, len, "image")) { tag = T_IMG; mark = 1; }
        else if (NAME_IS(nm, len, "audio")) { tag = T_AUDIO; mark = 1; }
        else if (NAME_IS(nm, len, "video")) { tag = T_VIDEO; mark = 1; }
        else if (NAME_IS(nm, len, "iframe")) { tag = T_IFRAME; mark = 1; }
        else if (NAME_IS(nm, len, "embed")) { tag = T_EMBED; mark = 1; }
        else if (NAME_IS(nm, len, "object")) { tag = T_OBJECT; mark = 1; }
        else if (NAME_IS(nm, len, "source")) tag = T_SOURCE;
        else if (NAME_IS(nm, len, "track")) tag = T_TRACK;
        else if (NAME_IS(nm, len, "picture")) tag = T_PICTURE;
        else if (NAME_IS(nm, len, "a")) {
            if (link_kind(s)) { tag = T_A; mark = 1; }
        } else if (NAME_IS(nm, len, "html")) {
            if (!s->lang) s->lang = attr_str(s, "lang");
            if (!s->xml_lang) s->xml_lang = attr_str(s, "xml:lang");
        } else if (NAME_IS(nm, len, "meta")) {
            if (!s->meta_lang && attr_eq(s, "http-equiv", "content-language", 1)) {
                s->meta_lang = attr_str(s, "content");
                if (!s->meta_lang) s->meta_lang = PyUnicode_FromString("");
            }
            if (attr_eq(s, "property", "og:image", 0) || attr_eq(s, "property", "og:image:url", 0) ||
                attr_eq(s, "name", "og:image", 0)) {
                PyObject *v = attr_str(s, "content");
                if (PyList_Append(s->og, v ? v : Py_None) < 0) { Py_XDECREF(v); return -1; }
                Py_XDECREF(v);
            }
        } else if (NAME_IS(nm, len, "base")) {
            if (!s->base && attr(s, "href")) s->base = attr_str(s, "href");
        }
        if (tag) {
            PyObject *d = attrs_dict(s);
            if (!d) return -1;
            elem = new_elem(s, tag, d, parent);
            if (elem < 0) return -1;
            if (mark) marker(s, elem);
        }
        if (NAME_IS(nm, len, "iframe")) {
            *kp = FN(text_element)(s, k, nm, len, 0, put_text, s);
            return 0;
        }
        if (!(kf & K_VOID)) push(s, nm, len, 0, elem, -1);
        return 0;
    }
    if (NAME_IS(nm, len, "figure")) {
        if (grow_array((void **)&s->figs, s->nfigs, &s->figcap, sizeof(Figure), 16) < 0) return -1;
        Figure *f = &s->figs[s->nfigs];
        f->parent = innermost_figure(s);
        f->state = 0;
        f->caption = NULL;
        push(s, nm, len, F_FIGURE, -1, (int)s->nfigs++);
        return 0;
    }
    if (NAME_IS(nm, len, "figcaption")) {
        int flags = 0;
        if (!s->capturing && s->depth < MAX_DEPTH) {
            for (int d = 0; d < s->depth; d++)
                if ((s->stack[d].flags & F_FIGURE) && s->figs[s->stack[d].fig].state == 0) {
                    s->figs[s->stack[d].fig].state = 2; /* takes this caption */
                    flags = F_CAPTION;
                }
        }
        if (flags) {
            s->capturing = 1;
            s->cap.n = 0;
        }
        push(s, nm, len, flags, -1, -1);
        return 0;
    }
    if (!(kf & K_VOID) && cell >= 0) push(s, nm, len, 0, -1, -1);
    return 0;
}

static int FN(scan_loop)(S *s) {
    const CH *u = (const CH *)s->u;
    Py_ssize_t n = s->n, i = 0;
    while (i < n) {
        Py_UCS4 c = u[i];
        if (c != '<' && c != '&') {
            Py_ssize_t e = i + 1;
            while (e < n && u[e] != '<' && u[e] != '&') e++;
            if (FN(text_run)(s, i, e) < 0) return -1;
            i = e;
        } else if (c == '<') {
            i = FN(lt)(s, i);
            if (i < 0 || PyErr_Occurred()) return -1;
        } else {
            i = FN(charref)(u, n, i, 0, put_text, s);
        }
    }
    return 0;
}
