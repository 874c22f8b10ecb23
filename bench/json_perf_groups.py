#!/usr/bin/env python3
# Groups a perf profile of json_codec_bench by symbol into the categories of BENCHMARKS.md
# ("JSON codec"): python3 bench/json_perf_groups.py perf.data [--comm THREAD] [v]
# (v: also the top symbols; --comm: only the threads of that name, e.g. caf.multiplexer,
# the name kafka_pipeline's CAF workers carry).
# The rules are regexes over demangled names without template arguments: approximate.
import re,sys,subprocess,collections
args=sys.argv[1:]
comm=[]
if "--comm" in args:
    i=args.index("--comm"); comm=["--comm",args[i+1]]; del args[i:i+2]
data=args[0]
verbose=len(args)>1
out=subprocess.run(["perf","report","-i",data,"--no-children","--sort","dso,sym","--stdio","-g","none","--percent-limit","0"]+comm,capture_output=True,text=True).stdout
cats=collections.OrderedDict((k,0.0) for k in ["parse (nlohmann lexer/parser, simdjson stage 1 + On-Demand)","DOM build/destroy (nlohmann values, maps)","read into record (sluice codec)","write (nlohmann serializer / direct writer, number formatting)","malloc/free","memcpy/memmove","kernel","benchmark loop, other"])
for line in out.splitlines():
    m=re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)",line)
    if not m: continue
    pct=float(m.group(1)); dso=m.group(2); kind=m.group(3); full=m.group(4)
    sym=full; prev=None
    while prev!=sym:
        prev=sym; sym=re.sub(r"<[^<>]*>","",sym)
    sym=re.sub(r"\(.*","",sym)
    if kind=='k': c="kernel"
    elif re.search(r"malloc|_int_free|cfree|operator new|operator delete|free@|tcache",sym): c="malloc/free"
    elif re.search(r"memmove|memcpy|memset|strlen",sym): c="memcpy/memmove"
    elif re.search(r"serializer|dump|to_chars|grisu|format_buffer|append_json|json_line_writer|to_json_line|to_json_value|json_object_writer|format_iso8601|dump_escaped|write_character|output_string_adapter",sym) or re.search(r"basic_string.*(push_back|append|reserve|_M_mutate|_M_append)",sym): c="write (nlohmann serializer / direct writer, number formatting)"
    elif "simdjson" in dso or re.search(r"lexer|parser|sax|input_adapter|iterator_input|scan_|get_codepoint|parse_json_text|fast_for_each|fast_parse|parse_with|strtod|strtof|strtoll|strtoull|____strto|round_and_return|str_to_mpn|mpn_",sym): c="parse (nlohmann lexer/parser, simdjson stage 1 + On-Demand)"
    elif re.search(r"basic_json|json_value|ordered_map|_Rb_tree|json_ref|lexicographical|destroy|std::map|_M_realloc_insert|memcmp",sym): c="DOM build/destroy (nlohmann values, maps)"
    elif re.search(r"json_read|from_json|json_object_reader|fast_read|fast_object_reader|fast_is_null|fast_skip|inspect<|parse_iso8601|FunctionRef|functional_internal",sym): c="read into record (sluice codec)"
    else: c="benchmark loop, other"
    cats[c]+=pct
user=sum(v for k,v in cats.items() if k!="kernel")
for k,v in cats.items():
    if k=="kernel": print(f"{v:6.1f}%  kernel (of all samples; the rest are shares of user time)")
    else: print(f"{100*v/user:6.1f}%  {k}")
if verbose:
    for line in out.splitlines():
        m=re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)",line)
        if m and float(m.group(1))>0.7:
            sym=m.group(4); prev=None
            while prev!=sym:
                prev=sym; sym=re.sub(r"<[^<>]*>","",sym)
            print(m.group(1), sym[:120])
