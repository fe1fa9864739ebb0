#!/usr/bin/env bash
# What `make install` needs from the machine, checked before it creates or downloads anything.
#
#   scripts/check_prerequisites.sh            (make install runs it; PYTHON, VENV, NEED_MB come from the Makefile)
#
# Every missing prerequisite gets one line, `error: <what is missing>: <what to install>`, and the script exits 1
# after listing them all.
# Environment: PYTHON (default python3): the interpreter .venv is made from; VENV (default .venv): where it goes;
# NEED_MB (default 2000): free disk space needed there, in MiB (0 skips the check); CXX (default c++): the C++
# compiler fairseq's extensions are built with (torch's cpp_extension uses the same variable).
set -uo pipefail

python=${PYTHON:-python3}
venv=${VENV:-.venv}
need_mb=${NEED_MB:-2000}
cxx=${CXX:-c++}
min_python=(3 11)
missing=0

error() { echo "error: $*" >&2; missing=$((missing + 1)); }

# Debian/Ubuntu package names for the Python version found, where that is known
pkg_hint() {  # pkg_hint SUFFIX  ->  "python3.11-SUFFIX" (or python3-SUFFIX)
    echo "python${py_version:-3}-$1"
}

# 1. Python >= 3.11 (pyproject.toml's requires-python)
py_version=""
if ! command -v "$python" >/dev/null 2>&1; then
    error "no Python interpreter '$python': install Python ${min_python[0]}.${min_python[1]} or newer (then: make install PYTHON=/path/to/python3)"
else
    # one query: major minor include-dir
    read -r py_major py_minor py_include < <("$python" -c \
        'import sys, sysconfig; print(sys.version_info[0], sys.version_info[1], sysconfig.get_paths()["include"])' \
        2>/dev/null)
    if [[ ! ${py_major:-} =~ ^[0-9]+$ || ! ${py_minor:-} =~ ^[0-9]+$ ]]; then
        error "'$python' does not run as a Python interpreter: install Python ${min_python[0]}.${min_python[1]} or newer (then: make install PYTHON=/path/to/python3)"
    elif (( py_major < min_python[0] || (py_major == min_python[0] && py_minor < min_python[1]) )); then
        error "Python ${min_python[0]}.${min_python[1]} or newer is needed, '$python' is $py_major.$py_minor: install it (e.g. python3.11) and run make install PYTHON=python3.11"
    else
        py_version=$py_major.$py_minor
    fi
fi

if [[ -n $py_version ]]; then
    # 2. the venv module with pip (Debian/Ubuntu ship it apart: python3.X-venv). Only when .venv is still to be made.
    # (ensurepip is what puts pip into a new venv; Debian/Ubuntu move it into python3.X-venv)
    if [[ ! -x $venv/bin/python ]] && ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        error "'$python' cannot create a virtual environment with pip (no venv/ensurepip module): install $(pkg_hint venv) (Debian/Ubuntu: sudo apt install $(pkg_hint venv))"
    fi

    # 3. Python's C headers (fairseq-fixed compiles C++/Cython extensions against them)
    if [[ ! -f ${py_include:-}/Python.h ]]; then
        error "no Python.h in '${py_include:-?}': install the Python $py_version headers (Debian/Ubuntu: sudo apt install $(pkg_hint dev); Fedora: sudo dnf install python3-devel)"
    fi
fi

# 4. a C++ compiler that compiles against those headers
if ! command -v "${cxx%% *}" >/dev/null 2>&1; then
    error "no C++ compiler '$cxx' (fairseq-fixed compiles C++/Cython extensions): install one (Debian/Ubuntu: sudo apt install build-essential; Fedora: sudo dnf install gcc-c++; macOS: xcode-select --install)"
elif [[ -n $py_version && -f ${py_include:-}/Python.h ]]; then
    if ! echo '#include <Python.h>' | $cxx -fsyntax-only -x c++ -I"$py_include" - >/dev/null 2>&1; then
        error "'$cxx' cannot compile a C++ file that includes Python.h: install a working C++ compiler (Debian/Ubuntu: sudo apt install build-essential)"
    fi
fi

# 5. disk space where .venv goes (torch, fairseq's build and pip's downloads)
if [[ $need_mb =~ ^[0-9]+$ ]] && (( need_mb > 0 )); then
    where=$venv
    while [[ ! -e $where && $where != "." && $where != "/" ]]; do where=$(dirname "$where"); done
    free_mb=$(df -Pk "$where" 2>/dev/null | awk 'NR == 2 {print int($4 / 1024)}')
    if [[ $free_mb =~ ^[0-9]+$ ]] && (( free_mb < need_mb )); then
        error "only $free_mb MiB free for $venv, about $need_mb MiB needed: free some disk space (or use TORCH=cpu, the smaller build)"
    fi
fi

if (( missing > 0 )); then
    echo "make install stopped before changing anything: $missing prerequisite(s) missing (docs/install.md)" >&2
    exit 1
fi
echo "prerequisites: Python $py_version, venv, Python.h, C++ compiler ($cxx), disk space: ok"
