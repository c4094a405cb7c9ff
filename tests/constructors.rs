//! Every constructor's error paths: an `Err` naming the sizes, never a panic.

use bitdrop::{Error, KeepProb, Mask, MaskBatch, MaskBatchMut, MaskMut, MatMut, MatRef, words_for};

#[test]
fn keep_prob_accepts_exactly_zero_to_one() {
    for ok in [
        1.0,
        0.5,
        f64::MIN_POSITIVE,
        5e-324,
        1.0 - f64::EPSILON / 2.0,
    ] {
        assert_eq!(KeepProb::new(ok).unwrap().get(), ok);
    }
    for bad in [
        0.0,
        -0.0,
        -0.5,
        1.0 + f64::EPSILON,
        2.0,
        f64::NAN,
        -f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ] {
        match KeepProb::new(bad) {
            Err(Error::KeepProb { value }) => {
                assert!(
                    value.to_bits() == bad.to_bits(),
                    "{bad} reported as {value}"
                )
            }
            other => panic!("KeepProb::new({bad}) gave {other:?}"),
        }
        assert!(KeepProb::try_from(bad).is_err());
    }
}

#[test]
fn drop_rate_accepts_zero_to_below_one() {
    assert_eq!(KeepProb::from_drop_rate(0.0).unwrap(), KeepProb::ONE);
    assert_eq!(KeepProb::from_drop_rate(0.25).unwrap().get(), 0.75);
    assert_eq!(KeepProb::from_drop_rate(0.75).unwrap().drop_rate(), 0.75);
    assert!(
        KeepProb::from_drop_rate(1.0 - f64::EPSILON / 2.0)
            .unwrap()
            .get()
            > 0.0
    );
    for bad in [
        1.0,
        -1e-300,
        7.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ] {
        assert!(
            matches!(KeepProb::from_drop_rate(bad), Err(Error::DropRate { .. })),
            "{bad}"
        );
    }
}

#[test]
fn mask_word_count_and_tail_bits() {
    for len in [0, 1, 63, 64, 65, 128, 1000] {
        let n = words_for(len);
        assert_eq!(n, len.div_ceil(64));
        let words = vec![0u64; n + 1];
        assert_eq!(
            Mask::new(&words, len),
            Err(Error::MaskWords {
                len,
                expected: n,
                found: n + 1
            })
        );
        if n > 0 {
            assert!(matches!(
                Mask::new(&words[..n - 1], len),
                Err(Error::MaskWords { .. })
            ));
        }
        if len % 64 != 0 {
            let mut words = vec![0u64; n];
            words[n - 1] = 1 << (len % 64);
            assert_eq!(
                Mask::new(&words, len),
                Err(Error::MaskTail { len, bit: len })
            );
            let mut copy = words.clone();
            assert_eq!(
                MaskMut::new(&mut copy, len),
                Err(Error::MaskTail { len, bit: len })
            );
            assert_eq!(copy, words, "nothing written on Err");
        }
    }
    let mut words = [0u64; 2];
    assert!(MaskMut::new(&mut words, 200).is_err());
    let mut mask = MaskMut::new(&mut words, 100).unwrap();
    assert_eq!(
        mask.set(100, true),
        Err(Error::Index {
            index: 100,
            len: 100
        })
    );
    assert_eq!(words, [0, 0]);
}

#[test]
fn mask_batch_shapes() {
    let words = [0u64; 6];
    assert!(MaskBatch::new(&words, 100, 3).is_ok());
    assert_eq!(
        MaskBatch::new(&words, 100, 2),
        Err(Error::MaskWords {
            len: 100,
            expected: 4,
            found: 6
        })
    );
    assert!(MaskBatch::new(&words, 64, usize::MAX).is_err()); // overflow
    assert!(MaskBatch::new(&[], 0, usize::MAX).is_ok()); // zero-unit masks need no words
    let mut tail = [0u64, 0, 1 << 40];
    assert_eq!(
        MaskBatch::new(&tail, 40, 3),
        Err(Error::MaskTail { len: 40, bit: 168 })
    );
    assert!(MaskBatchMut::new(&mut tail, 40, 3).is_err());
    assert!(MaskBatchMut::new(&mut tail, 41, 3).is_ok());
}

#[test]
fn matrix_bounds_without_overflow() {
    let d = [0.0f32; 12];
    assert!(MatRef::new(&d, 3, 4, 4, 1).is_ok());
    assert!(MatRef::new(&d, 3, 4, 1, 3).is_ok());
    assert!(MatRef::row_major(&d, 4, 3).is_ok());
    assert!(MatRef::col_major(&d, 2, 6).is_ok());
    assert_eq!(
        MatRef::new(&d, 3, 5, 4, 1),
        Err(Error::MatrixBounds {
            rows: 3,
            cols: 5,
            row_stride: 4,
            col_stride: 1,
            data_len: 12
        })
    );
    assert!(MatRef::row_major(&d, 13, 1).is_err());
    assert!(MatRef::new(&d, usize::MAX, 2, 1, 1).is_err());
    assert!(MatRef::new(&d, 2, 2, usize::MAX, 1).is_err());
    assert!(MatRef::new(&d, 2, 2, usize::MAX / 2 + 1, usize::MAX / 2 + 1).is_err());
    assert!(MatRef::<f64>::new(&[], 0, 0, 0, 0).is_ok());
    assert!(MatRef::<f64>::new(&[], 0, usize::MAX, usize::MAX, usize::MAX).is_ok());
    assert!(MatRef::<f64>::new(&[], 1, 1, 0, 0).is_err());
    // A broadcast (zero-stride) read-only view is fine.
    assert!(MatRef::new(&d, 1000, 1000, 0, 0).is_ok());
}

#[test]
fn mutable_matrix_rejects_aliasing() {
    let mut d = [0.0f64; 60];
    assert!(MatMut::new(&mut d, 6, 10, 10, 1).is_ok());
    assert!(MatMut::new(&mut d, 6, 10, 1, 6).is_ok());
    assert_eq!(
        MatMut::new(&mut d, 6, 10, 1, 1),
        Err(Error::MatrixAliasing {
            rows: 6,
            cols: 10,
            row_stride: 1,
            col_stride: 1
        })
    );
    assert!(MatMut::new(&mut d, 2, 2, 0, 1).is_err());
    assert!(MatMut::new(&mut d, 1, 2, 0, 1).is_ok());
    assert!(MatMut::new(&mut d, 3, 3, 2, 4).is_err()); // (2, 0) meets (0, 1)
    assert!(MatMut::new(&mut d, 2, 3, 3, 2).is_ok()); // interleaved, disjoint
    assert!(MatMut::new(&mut d, 2, 2, usize::MAX, 1).is_err());
    assert_eq!(d, [0.0; 60], "nothing written");
}

#[test]
fn errors_display_their_numbers() {
    let cases: [(Error, &str); 11] = [
        (Error::KeepProb { value: 2.0 }, "2"),
        (Error::DropRate { value: 1.0 }, "1"),
        (
            Error::MaskWords {
                len: 65,
                expected: 2,
                found: 1,
            },
            "65",
        ),
        (Error::MaskTail { len: 3, bit: 9 }, "9"),
        (
            Error::MatrixBounds {
                rows: 7,
                cols: 8,
                row_stride: 8,
                col_stride: 1,
                data_len: 55,
            },
            "55",
        ),
        (
            Error::MatrixAliasing {
                rows: 6,
                cols: 10,
                row_stride: 1,
                col_stride: 1,
            },
            "6x10",
        ),
        (
            Error::Length {
                arg: "x",
                expected: 4,
                found: 5,
            },
            "`x`",
        ),
        (
            Error::MaskLength {
                arg: "mask",
                expected: 4,
                found: 5,
            },
            "`mask`",
        ),
        (
            Error::Shape {
                arg: "dw",
                expected: (2, 3),
                found: (3, 2),
            },
            "2x3",
        ),
        (Error::Index { index: 9, len: 3 }, "9"),
        (
            Error::Workspace {
                expected: 10,
                found: 3,
            },
            "10",
        ),
    ];
    for (err, needle) in cases {
        let text = err.to_string();
        assert!(text.contains(needle), "{text:?} lacks {needle:?}");
        let _: &dyn core::error::Error = &err;
    }
}
