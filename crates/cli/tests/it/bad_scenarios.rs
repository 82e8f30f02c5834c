//! Bad input gets a clear one-paragraph error with file:line and exit 2,
//! never a panic or a backtrace.

use crate::swapsim;

fn bad(fixture: &str) -> String {
    let path = format!("crates/cli/tests/fixtures/{fixture}");
    let run = swapsim(&["run", &path, "--seed", "1"]);
    assert_eq!(run.code, 2, "{fixture}: {}{}", run.stdout, run.stderr);
    assert!(run.stdout.is_empty(), "{fixture}: nothing on stdout: {}", run.stdout);
    let err = run.stderr.trim_end().to_string();
    assert!(!err.contains("panicked") && !err.contains("backtrace") && !err.contains("traceback"), "{err}");
    assert_eq!(err.lines().count(), 1, "one paragraph: {err}");
    assert!(err.starts_with(&format!("error: {path}:")), "{err}");
    err
}

#[test]
fn syntax_error() {
    let err = bad("syntax_error.lua");
    assert!(err.contains("syntax_error.lua:4:"), "{err}");
    assert!(err.contains("syntax error"), "{err}");
}

#[test]
fn unknown_function() {
    let err = bad("unknown_function.lua");
    assert!(err.contains("unknown_function.lua:4: attempt to call a nil value (global 'frok')"), "{err}");
}

#[test]
fn wrong_argument_type_at_load_time() {
    let err = bad("wrong_type.lua");
    assert!(err.contains("wrong_type.lua:3:"), "{err}");
    assert!(err.contains("p:map(): expected an address, a non-negative integer; got the string"), "{err}");
}

#[test]
fn wrong_argument_type_inside_a_program() {
    let err = bad("wrong_type_in_program.lua");
    assert!(err.contains("wrong_type_in_program.lua:4: fork: expected the child's program"), "{err}");
}

#[test]
fn os_execute_is_not_available() {
    let err = bad("os_execute.lua");
    assert!(err.contains("os_execute.lua:2: attempt to index a nil value (global 'os')"), "{err}");
    assert!(err.contains("sandboxed"), "{err}");
}

#[test]
fn bad_machine_field() {
    let err = bad("bad_machine.lua");
    assert!(err.contains("bad_machine.lua:1: machine: cpus must be between 1 and 64, got 0"), "{err}");
}

#[test]
fn setup_on_an_unmapped_address() {
    let err = bad("unmapped_setup.lua");
    assert!(err.contains("unmapped_setup.lua:4: p:write(): address 0x20000 is not mapped"), "{err}");
}

#[test]
fn system_call_outside_a_program() {
    let err = bad("syscall_at_top_level.lua");
    assert!(err.contains("syscall_at_top_level.lua:3: swapoff() is a system call"), "{err}");
}

#[test]
fn missing_file_and_bad_usage() {
    let run = swapsim(&["run", "no/such/file.lua"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("cannot read scenario no/such/file.lua"), "{}", run.stderr);
    let run = swapsim(&["run", "scenarios/race1_fork.lua", "--kernel", "pre5"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("invalid value 'pre5' for '--kernel <KERNEL>'"), "{}", run.stderr);
    assert!(
        run.stderr.contains("[possible values: pre4, patched, 2.4.10, 5.1, 5.1-rc1, 5.2, 5.3, 5.14, 6.9]"),
        "{}",
        run.stderr
    );
    let run = swapsim(&["run", "scenarios/race1_fork.lua", "--seeds", "9..3"]);
    assert_eq!(run.code, 2);
}

#[test]
fn shmctl_checks_its_arguments_at_the_callers_line() {
    let err = bad("shmctl_bad_command.lua");
    assert!(
        err.contains(r#"shmctl_bad_command.lua:4: shmctl: the command must be "IPC_RMID" (the only one modelled), got the string "IPC_STAT""#),
        "{err}"
    );
    let err = bad("shmctl_not_a_segment.lua");
    assert!(
        err.contains(
            "shmctl_not_a_segment.lua:4: shmctl: expected a segment from shmget() as its first argument, got 0"
        ),
        "{err}"
    );
}

#[test]
fn an_extra_argument_is_an_error_at_the_callers_line() {
    let err = bad("extra_argument_in_program.lua");
    assert!(
        err.contains(
            r#"extra_argument_in_program.lua:4: fork: takes at most 1 argument, fork([program]); got 2 (argument #2 is the string "x")"#
        ),
        "{err}"
    );
    let err = bad("extra_argument_at_load.lua");
    assert!(
        err.contains(
            r#"extra_argument_at_load.lua:3: p:map(): takes 2 arguments, p:map(start, pages); got 3 (argument #3 is the string "x")"#
        ),
        "{err}"
    );
}

#[test]
fn swap_out_names_a_device_the_machine_has() {
    let err = bad("swap_out_no_such_device.lua");
    assert!(
        err.contains(
            "swap_out_no_such_device.lua:5: p:swap_out(): there is no swap device 3: the machine has 2 (machine{ swap_devices })"
        ),
        "{err}"
    );
    let err = bad("swap_out_bad_device.lua");
    assert!(
        err.contains(r#"swap_out_bad_device.lua:5: p:swap_out(): expected a swap device number (1 is the first), a positive integer; got the string "two""#),
        "{err}"
    );
}
