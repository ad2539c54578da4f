;; Sample TA, version 2: the update of counter-v1.wat, visibly different.
;;
;; Same store key and perso name as v1 (so an update keeps the count), but it counts
;; by 2 and outputs "v2: <GREETING IN ASCII UPPER CASE>, call #N". Status codes as in
;; v1. The ABI is docs/ta-abi.md.
;; Binary: counter-v2.wasm (a test checks that it is what this file compiles to).
(module
  (import "teep" "kv_get" (func $kv_get (param i32 i32 i32 i32) (result i32)))
  (import "teep" "kv_put" (func $kv_put (param i32 i32 i32 i32) (result i32)))
  (import "teep" "perso_read" (func $perso_read (param i32 i32 i32 i32) (result i32)))
  (import "teep" "output_write" (func $output_write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; 0: perso name, 16: store key, 32: output text, 48: prefix, 64: counter,
  ;; 96..128: digits, 256..512: the greeting.
  (data (i32.const 0) "greeting")
  (data (i32.const 16) "count")
  (data (i32.const 32) ", call #")
  (data (i32.const 48) "v2: ")

  ;; Outputs the decimal digits of $n (built backwards, ending at offset 128).
  (func $write_decimal (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (i32.const 128))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p)
        (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $digit (local.get $n)))
    (call $output_write (local.get $p) (i32.sub (i32.const 128) (local.get $p))))

  ;; Upper-cases the ASCII letters of [$p, $end).
  (func $upper (param $p i32) (param $end i32)
    (local $c i32)
    (block $done
      (loop $byte
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $p)))
        (if (i32.lt_u (i32.sub (local.get $c) (i32.const 97)) (i32.const 26))
          (then (i32.store8 (local.get $p) (i32.sub (local.get $c) (i32.const 32)))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $byte))))

  (func (export "invoke") (result i32)
    (local $len i32)
    (local $got i32)
    (local $count i32)
    (local.set $len
      (call $perso_read (i32.const 0) (i32.const 8) (i32.const 256) (i32.const 256)))
    (if (i32.lt_s (local.get $len) (i32.const 0)) (then (return (i32.const 1))))
    (if (i32.gt_s (local.get $len) (i32.const 256)) (then (return (i32.const 2))))
    (call $upper (i32.const 256) (i32.add (i32.const 256) (local.get $len)))
    (local.set $got (call $kv_get (i32.const 16) (i32.const 5) (i32.const 64) (i32.const 4)))
    (if (i32.eq (local.get $got) (i32.const 4))
      (then (local.set $count (i32.load (i32.const 64))))
      (else (if (i32.ne (local.get $got) (i32.const -2)) (then (return (i32.const 3))))))
    (local.set $count (i32.add (local.get $count) (i32.const 2)))
    (i32.store (i32.const 64) (local.get $count))
    (if (call $kv_put (i32.const 16) (i32.const 5) (i32.const 64) (i32.const 4))
      (then (return (i32.const 4))))
    (if (call $output_write (i32.const 48) (i32.const 4)) (then (return (i32.const 5))))
    (if (call $output_write (i32.const 256) (local.get $len)) (then (return (i32.const 5))))
    (if (call $output_write (i32.const 32) (i32.const 8)) (then (return (i32.const 5))))
    (if (call $write_decimal (local.get $count)) (then (return (i32.const 5))))
    (i32.const 0)))
