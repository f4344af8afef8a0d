"""Options, ini keys and environment: precedence, bad values, zero recordings."""

from __future__ import annotations

import pytest

SHOW_SETTINGS = """
from pytest_adsreplay.plugin import RUN_KEY

def test_settings(pytestconfig):
    s = pytestconfig.stash[RUN_KEY].settings
    print("SETTINGS", s.function, s.timeout, s.workers, s.db, s.brake_jerk,
          dict(s.function_params), s.cycle_time, s.invalid, s.redis_url)
    print("SOURCE", s.source("timeout"), "|", s.source("function"))
"""


def test_help_lists_options_and_ini_keys(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "*AEB replay of MF4 recordings*",
            "*--recordings=PATH*",
            "*--aeb-function=MOD:ATTR*",
            "*--channel-map=FILE*",
            "*--redis-url=URL*",
            "*--adsreplay-workers=N*",
            "*--adsreplay-timeout=S*",
            "*--adsreplay-db=URL*",
            "*--adsreplay-baseline=FILE*",
            "*--adsreplay-update-baseline*",
            "*--adsreplay-report=DIR*",
            "*adsreplay_cycle_time*",
            "*adsreplay_brake_threshold*",
            "*adsreplay_function_params*",
        ]
    )


def test_markers_are_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        ["*recordings(pattern=None, tags=None, scenario=None)*", "*adsreplay_params(**params)*"]
    )


def test_defaults(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADSREPLAY_REDIS_URL", raising=False)
    project.makepyfile(test_s=SHOW_SETTINGS)
    result = project.runpytest("-s", "--recordings=recs")
    result.stdout.fnmatch_lines(
        ["*SETTINGS aebfn:Ttc 300.0 None */results.sqlite 40.0 {} None error None"]
    )


def test_precedence_cli_over_env_over_ini(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(test_s=SHOW_SETTINGS)
    project.makeini(
        """
        [pytest]
        adsreplay_function = aebfn:Ttc
        adsreplay_timeout = 11
        adsreplay_brake_jerk = inf
        adsreplay_function_params = { brake_ttc = 1.2 }
        adsreplay_cycle_time = 0.02
        adsreplay_invalid = skip
        """
    )
    result = project.runpytest("-s", "--recordings=recs")
    result.stdout.fnmatch_lines(
        [
            "*SETTINGS aebfn:Ttc 11.0 *inf {'brake_ttc': 1.2} 0.02 skip *",
            "*SOURCE tox.ini adsreplay_timeout*",
        ]
    )
    monkeypatch.setenv("ADSREPLAY_TIMEOUT", "22")
    result = project.runpytest("-s", "--recordings=recs")
    result.stdout.fnmatch_lines(
        ["*SETTINGS aebfn:Ttc 22.0 *", "*SOURCE environment ADSREPLAY_TIMEOUT*"]
    )
    result = project.runpytest("-s", "--recordings=recs", "--adsreplay-timeout=33")
    result.stdout.fnmatch_lines(
        ["*SETTINGS aebfn:Ttc 33.0 *", "*SOURCE command line --adsreplay-timeout*"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--adsreplay-timeout=soon"],
            "*--adsreplay-timeout = 'soon' (from command line*) is not a number*",
        ),
        (
            ["--adsreplay-timeout=-1"],
            "*--adsreplay-timeout = '-1' (from command line*) must be > 0*",
        ),
        (["--adsreplay-workers=-2"], "*--adsreplay-workers = '-2'*must be >= 0*"),
        (["--adsreplay-workers=two"], "*--adsreplay-workers = 'two'*not a whole number*"),
        (["--adsreplay-read-ahead=-1"], "*--adsreplay-read-ahead = '-1'*must be >= 0*"),
        (["--adsreplay-read-ahead=1.5"], "*--adsreplay-read-ahead = '1.5'*not a whole number*"),
        (["--aeb-function=nocolon"], "*--aeb-function = 'nocolon'*module:attr*"),
        (
            ["--redis-url=http://x:secret@host"],
            "*--redis-url = 'http://x:***@host'*must start with redis://*",
        ),
    ],
)
def test_bad_cli_values_are_usage_errors(
    project: pytest.Pytester, args: list[str], message: str
) -> None:
    result = project.runpytest("--recordings=recs", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "secret" not in result.stderr.str() + result.stdout.str()


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        (
            "adsreplay_brake_threshold = heavy",
            "*adsreplay_brake_threshold = 'heavy' (from tox.ini*) is not a number*",
        ),
        ("adsreplay_actuator_delay = -0.1", "*adsreplay_actuator_delay = '-0.1'*must be >= 0*"),
        ("adsreplay_invalid = ignore", "*adsreplay_invalid = 'ignore'*one of error, skip, fail*"),
        (
            "adsreplay_function_params = {fcw = ",
            "*adsreplay_function_params*not a TOML inline table*",
        ),
        ("adsreplay_cycle_time = 0", "*adsreplay_cycle_time = '0'*must be > 0*"),
    ],
)
def test_bad_ini_values_name_the_ini_file(project: pytest.Pytester, ini: str, message: str) -> None:
    project.makeini(f"[pytest]\nadsreplay_function = aebfn:Ttc\n{ini}\n")
    result = project.runpytest("--recordings=recs")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_env_var_bad_value_names_the_variable(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADSREPLAY_TIMEOUT", "forever")
    result = project.runpytest("--recordings=recs")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*adsreplay_timeout = 'forever' (from environment ADSREPLAY_TIMEOUT)*"]
    )


def test_ini_paths_are_relative_to_the_ini_file(project: pytest.Pytester) -> None:
    sub = project.mkdir("sub")
    project.makeini("[pytest]\nadsreplay_function = aebfn:Ttc\nadsreplay_recordings = recs/ccrs\n")
    project.makepyfile(test_r="def test_r(recording):\n    assert recording.path.exists()\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(sub)
        result = project.runpytest(
            str(project.path), "-p", "no:cacheprovider", "--rootdir", str(project.path)
        )
    result.assert_outcomes(passed=3)  # two recordings + the a40 expectation item


def test_zero_recordings_is_a_usage_error(project: pytest.Pytester) -> None:
    project.mkdir("empty")
    project.makepyfile(test_r="def test_r(replay):\n    pass\n")
    result = project.runpytest("--recordings=empty")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*no *.mf4 recordings found in *empty (from command line --recordings)*"]
    )


def test_missing_recordings_path_is_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest("--recordings=nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*recordings path *nope* (from command line --recordings) does not exist*"]
    )


def test_replay_without_recordings_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makepyfile(test_r="def test_r(replay):\n    pass\n")
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*needs recordings, but none are configured*", "*--recordings PATH*"]
    )


def test_missing_function_module_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makepyfile(test_r="def test_r(replay):\n    pass\n")
    result = project.runpytest("--recordings=recs", "--aeb-function=no_such_module:Aeb")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cannot import module 'no_such_module'*"])
    assert "Traceback" not in result.stderr.str()


def test_function_params_that_do_not_fit_are_a_usage_error(project: pytest.Pytester) -> None:
    project.makepyfile(test_r="def test_r(replay):\n    pass\n")
    project.makeini(
        "[pytest]\nadsreplay_function = aebfn:Ttc\nadsreplay_function_params = { nope = 1 }\n"
    )
    result = project.runpytest("--recordings=recs")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*cannot build function under test aebfn:Ttc with params {'nope': 1}*"]
    )


def test_replay_without_function_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\n")
    project.makepyfile(test_r="def test_r(replay):\n    pass\n")
    result = project.runpytest("--recordings=recs")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*needs a function under test*", "*--aeb-function*"])


def test_plugin_is_inert_without_recordings(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "adsreplay:" not in result.stdout.str()
    assert "KPI summary" not in result.stdout.str()


def test_recordings_from_env_and_glob(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(test_r="def test_r(recording):\n    print('ID', recording.id)\n")
    monkeypatch.setenv("ADSREPLAY_RECORDINGS", "recs/ccrs")
    result = project.runpytest("-s", "-k", "test_r")
    result.stdout.fnmatch_lines(["*ID a40.mf4*", "*ID b60.mf4*"])
    result = project.runpytest("-s", "-k", "test_r", "--recordings=recs/*/c*.mf4")
    result.stdout.fnmatch_lines(["*ID ccrm/c50.mf4*"])
    result.assert_outcomes(passed=1)
