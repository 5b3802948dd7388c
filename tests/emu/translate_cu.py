#!/usr/bin/env python3
"""translate_cu.py - turn a CUDA source file into host C++ for the CPU emulator (tests/emu).

    translate_cu.py INPUT.cu OUTPUT.cpp [--display-name cuda/attention.cu]
    translate_cu.py --self-test

The output is compiled by g++ with tests/emu/cuda_emu.h force-included, which handles everything
that is a plain macro or function (qualifiers, built-in variables, intrinsics). This script does
only what needs the syntax:

  * kernel launches  name<tmpl><<<grid, block[, smem[, stream]]>>>(args...)  (any spacing, may
    span lines) become  ::bq_emu::launch(name<tmpl>, "name<tmpl>", grid, block[, ...])(args...);
  * `extern __shared__ T name[];` becomes a pointer to the launch's dynamic shared buffer;
  * every other `__shared__` declaration inside a function (cuda_emu.h makes it `static`) is
    followed by ::bq_emu::shared_decl(&name, sizeof(name)) so that the runtime poisons it per block
    and counts it against the shared-memory limit.

Comments and string literals are never touched, and no line is added or removed: a `#line`
directive at the top keeps compiler messages and __FILE__ / __LINE__ pointing into the original.
Anything else that nvcc accepts and g++ does not (inline PTX in a .cu, device-only intrinsics the
emulator lacks) fails to compile, naming the original line.
"""
import argparse
import os
import re
import sys


def mask_code(text):
    """A copy of `text` with the contents of comments and string / character literals replaced by
    spaces (newlines kept), so that searches only see code. Same length as `text`."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith('//', i):
            j = text.find('\n', i)
            j = n if j < 0 else j
            for k in range(i, j):
                out[k] = ' '
            i = j
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
            for k in range(i, j):
                if text[k] != '\n':
                    out[k] = ' '
            i = j
        elif c in '"\'':
            j = i + 1
            while j < n and text[j] != c and text[j] != '\n':
                j += 2 if text[j] == '\\' else 1
            for k in range(i + 1, min(j, n)):
                out[k] = ' '
            i = j + 1
        else:
            i += 1
    return ''.join(out)


IDENT = re.compile(r'[A-Za-z_]\w*')


def kernel_expression_start(masked, end):
    """Start of the kernel expression (identifier, optional ::, optional <template args>) that ends
    just before position `end` (where `<<<` begins)."""
    j = end - 1
    while j >= 0 and masked[j].isspace():
        j -= 1
    if j >= 0 and masked[j] == '>':  # template arguments: match the angle brackets backwards
        depth = 0
        while j >= 0:
            if masked[j] == '>':
                depth += 1
            elif masked[j] == '<':
                depth -= 1
                if depth == 0:
                    break
            j -= 1
        j -= 1
        while j >= 0 and masked[j].isspace():
            j -= 1
    while j >= 0 and (masked[j].isalnum() or masked[j] in '_:'):
        j -= 1
    return j + 1


def split_top_level(s, sep=','):
    """Split on `sep` outside (), [], {}."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(s):
        if c in '([{':
            depth += 1
        elif c in ')]}':
            depth -= 1
        elif c == sep and depth == 0:
            parts.append(s[start:i])
            start = i + 1
    parts.append(s[start:])
    return parts


def rewrite_launches(text, masked):
    """Kernel launches -> ::bq_emu::launch(...)(args)."""
    edits = []
    pos = 0
    while True:
        open_at = masked.find('<<<', pos)
        if open_at < 0:
            break
        close_at = masked.find('>>>', open_at + 3)
        if close_at < 0:
            raise SyntaxError('unterminated <<< at line %d' % (text.count('\n', 0, open_at) + 1))
        start = kernel_expression_start(masked, open_at)
        kernel = text[start:open_at].strip()
        if not kernel:
            raise SyntaxError('no kernel name before <<< at line %d' % (text.count('\n', 0, open_at) + 1))
        params = text[open_at + 3:close_at]
        n_params = len(split_top_level(masked[open_at + 3:close_at]))
        if not 2 <= n_params <= 4:
            raise SyntaxError('launch with %d parameters at line %d' %
                              (n_params, text.count('\n', 0, open_at) + 1))
        name = ' '.join(kernel.split()).replace('\\', '\\\\').replace('"', '\\"')
        edits.append((start, close_at + 3,
                      '::bq_emu::launch(%s, "%s", %s)' % (kernel, name, params)))
        pos = close_at + 3
    return edits


# What precedes the '{' of a scope that is not code: namespace, class-like, enum, extern "C" block
# (string contents are masked to spaces, hence "[^"]*").
SCOPE_HEADS = [
    re.compile(r'\s*(inline\s+)?namespace\b[^()]*', re.S),
    re.compile(r'\s*(template\s*<.*>\s*)?(typedef\s+)?(struct|class|union|enum)\b[^()]*', re.S),
    re.compile(r'\s*extern\s*"[^"]*"\s*', re.S),
]


def function_scope_map(masked):
    """For each position, whether it lies inside a function body (as opposed to namespace, class
    or extern "C" scope). Returns a function pos -> bool."""
    stack = []
    inside_at = []  # (position, inside-function after this brace event)
    last_stmt = 0
    for i, c in enumerate(masked):
        if c == '{':
            head = masked[last_stmt:i]
            # strip preprocessor lines from the head
            head = '\n'.join(l for l in head.split('\n') if not l.lstrip().startswith('#'))
            is_code = any(stack) or not any(r.fullmatch(head) for r in SCOPE_HEADS)
            stack.append(is_code)
            inside_at.append((i, any(stack)))
            last_stmt = i + 1
        elif c == '}':
            if stack:
                stack.pop()
            inside_at.append((i, any(stack)))
            last_stmt = i + 1
        elif c == ';':
            last_stmt = i + 1

    def inside(pos):
        state = False
        for p, s in inside_at:
            if p >= pos:
                break
            state = s
        return state

    return inside


ALIGN = re.compile(r'__align__\s*\([^)]*\)')


def declared_names(decl):
    """Names declared by the text between `__shared__` and `;`."""
    decl = ALIGN.sub(' ', decl)
    names = []
    for k, part in enumerate(split_top_level(decl)):
        head = re.split(r'[\[=({]', part, maxsplit=1)[0]
        idents = IDENT.findall(head)
        if not idents:
            raise SyntaxError('cannot find the name in __shared__ declaration %r' % decl.strip())
        names.append(idents[-1] if k == 0 else idents[0])
    return names


def rewrite_shared(text, masked):
    """extern __shared__ -> dynamic buffer pointer; other __shared__ -> + registration."""
    edits = []
    inside = function_scope_map(masked)
    for m in re.finditer(r'\b__shared__\b', masked):
        end = masked.find(';', m.end())
        if end < 0:
            raise SyntaxError('unterminated __shared__ declaration at line %d' % (text.count('\n', 0, m.start()) + 1))
        ext = re.search(r'\bextern\s+$', masked[max(0, m.start() - 40):m.start()])
        if ext:
            start = m.start() - (len(ext.group(0)))
            decl = ALIGN.sub(' ', text[m.end():end])
            dm = re.match(r'\s*(.+?)\s*\b([A-Za-z_]\w*)\s*\[\s*\]\s*$', decl, re.S)
            if not dm:
                raise SyntaxError('unsupported extern __shared__ declaration %r' % decl.strip())
            ctype, name = ' '.join(dm.group(1).split()), dm.group(2)
            edits.append((start, end + 1, '%s *%s = static_cast<%s *>(::bq_emu::dynamic_shared());' %
                          (ctype, name, ctype)))
        elif inside(m.start()):
            regs = ''.join(' ::bq_emu::shared_decl(&%s, sizeof(%s));' % (n, n)
                           for n in declared_names(text[m.end():end]))
            edits.append((end + 1, end + 1, regs))
    return edits


def translate(text, display_name):
    masked = mask_code(text)
    edits = rewrite_launches(text, masked) + rewrite_shared(text, masked)
    edits.sort(key=lambda e: e[0])
    out, pos = [], 0
    for start, end, replacement in edits:
        if start < pos:
            raise SyntaxError('overlapping rewrites near line %d' % (text.count('\n', 0, start) + 1))
        out.append(text[pos:start])
        out.append(replacement)
        pos = end
    out.append(text[pos:])
    header = ('// Generated by tests/emu/translate_cu.py from %s: host C++ for the CPU emulator. '
              'Do not edit.\n#line 1 "%s"\n' % (display_name, display_name))
    return header + ''.join(out)


SELF_TESTS = [
    # (input, substrings the output must contain)
    ('k<<<g, b>>>(x);', ['::bq_emu::launch(k, "k", g, b)(x);']),
    ('k<T><<<grid, 256, 0, s>>>(a, b);', ['::bq_emu::launch(k<T>, "k<T>", grid, 256, 0, s)(a, b);']),
    ('ns::k<A<B>, 3> <<< dim3(1, 2), n * 32,\n   bytes >>>(\n  p);',
     ['::bq_emu::launch(ns::k<A<B>, 3>, "ns::k<A<B>, 3>",  dim3(1, 2), n * 32,\n   bytes )(\n  p);']),
    ('// k<<<1, 1>>>(x) in a comment\nconst char *s = "<<<";',
     ['// k<<<1, 1>>>(x) in a comment', '"<<<"']),
    ('void f() {\n  extern __shared__ __align__(16) float4 smem[];\n}',
     ['float4 *smem = static_cast<float4 *>(::bq_emu::dynamic_shared());']),
    ('void f() {\n  extern __shared__ unsigned char raw [ ];\n}',
     ['unsigned char *raw = static_cast<unsigned char *>(::bq_emu::dynamic_shared());']),
    ('template <typename T> void f() {\n  __shared__ __align__(128) T q_s[R][LD];\n}',
     ['__shared__ __align__(128) T q_s[R][LD]; ::bq_emu::shared_decl(&q_s, sizeof(q_s));']),
    ('void f() {\n  __shared__ float a[4], b[2][3];\n}',
     ['::bq_emu::shared_decl(&a, sizeof(a)); ::bq_emu::shared_decl(&b, sizeof(b));']),
    ('namespace n {\n__shared__ int file_scope[8];\n}\nstruct S { int x; };\n',
     ['__shared__ int file_scope[8];\n}']),
    ('extern "C" void g() { if (1) { __shared__ int s; s = 1; } }',
     ['__shared__ int s; ::bq_emu::shared_decl(&s, sizeof(s));']),
]


def self_test():
    failures = 0
    for src, wanted in SELF_TESTS:
        out = translate(src, 'self-test.cu')
        for w in wanted:
            if w not in out:
                failures += 1
                print('FAIL: %r\n  translated to %r\n  missing %r' % (src, out, w))
        if out.count('\n') != src.count('\n') + 2:
            failures += 1
            print('FAIL: %r: line count changed' % src)
    # a namespace-scope __shared__ must not get a registration statement
    if 'shared_decl(&file_scope' in translate(SELF_TESTS[8][0], 'x.cu'):
        failures += 1
        print('FAIL: registration emitted at namespace scope')
    print('translate_cu.py self-test: %d case(s), %d failure(s)' % (len(SELF_TESTS), failures))
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('input', nargs='?')
    ap.add_argument('output', nargs='?')
    ap.add_argument('--display-name', help='file name for #line (default: the input path)')
    ap.add_argument('--self-test', action='store_true', help='run the built-in checks and exit')
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if not args.input or not args.output:
        ap.error('INPUT and OUTPUT are required')
    with open(args.input, encoding='utf-8') as f:
        text = f.read()
    try:
        result = translate(text, args.display_name or args.input)
    except SyntaxError as e:
        print('%s: %s' % (args.input, e), file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    tmp = args.output + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(result)
    os.replace(tmp, args.output)
    return 0


if __name__ == '__main__':
    sys.exit(main())
