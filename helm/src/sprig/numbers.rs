//! Sprig's conversions and arithmetic (`int`, `float64`, `add`, `max`, `until`, ...),
//! with `cast`'s rules for values that do not convert.

use super::*;

pub(super) fn add(m: &mut FuncMap) {
    use Ty::*;
    // Conversions and math.
    m.insert("atoi", &[Str], None, |_, a| {
        Ok(Value::Int(s(&a[0]).parse::<i64>().unwrap_or(0)))
    });
    m.insert("int", &[Any], None, |_, a| Ok(Value::Int(to_int64(&a[0]))));
    m.insert("int64", &[Any], None, |_, a| {
        Ok(Value::Int64(to_int64(&a[0])))
    });
    m.insert("float64", &[Any], None, |_, a| {
        Ok(Value::Float(to_float64(&a[0])))
    });
    m.insert("toDecimal", &[Any], None, |_, a| {
        Ok(Value::Int64(
            i64::from_str_radix(&strval(&a[0]), 8).unwrap_or(0),
        ))
    });
    m.insert("add1", &[Any], None, |_, a| {
        Ok(Value::Int64(to_int64(&a[0]).wrapping_add(1)))
    });
    m.insert("add", &[], Some(Any), |_, a| {
        Ok(Value::Int64(
            a.iter().fold(0i64, |x, y| x.wrapping_add(to_int64(y))),
        ))
    });
    m.insert("sub", &[Any, Any], None, |_, a| {
        Ok(Value::Int64(to_int64(&a[0]).wrapping_sub(to_int64(&a[1]))))
    });
    m.insert("mul", &[Any], Some(Any), |_, a| {
        Ok(Value::Int64(
            a.iter().fold(1i64, |x, y| x.wrapping_mul(to_int64(y))),
        ))
    });
    m.insert("div", &[Any, Any], None, |_, a| {
        let d = to_int64(&a[1]);
        if d == 0 {
            return Err("runtime error: integer divide by zero".into());
        }
        Ok(Value::Int64(to_int64(&a[0]).wrapping_div(d)))
    });
    m.insert("mod", &[Any, Any], None, |_, a| {
        let d = to_int64(&a[1]);
        if d == 0 {
            return Err("runtime error: integer divide by zero".into());
        }
        Ok(Value::Int64(to_int64(&a[0]).wrapping_rem(d)))
    });
    m.insert("max", &[Any], Some(Any), |_, a| {
        Ok(Value::Int64(a.iter().map(to_int64).max().unwrap_or(0)))
    });
    m.insert("biggest", &[Any], Some(Any), |_, a| {
        Ok(Value::Int64(a.iter().map(to_int64).max().unwrap_or(0)))
    });
    m.insert("min", &[Any], Some(Any), |_, a| {
        Ok(Value::Int64(a.iter().map(to_int64).min().unwrap_or(0)))
    });
    m.insert("add1f", &[Any], None, |_, a| {
        Ok(Value::Float(to_float64(&a[0]) + 1.0))
    });
    m.insert("addf", &[], Some(Any), |_, a| {
        Ok(Value::Float(a.iter().map(to_float64).sum()))
    });
    m.insert("subf", &[Any], Some(Any), |_, a| {
        Ok(Value::Float(
            a[1..]
                .iter()
                .fold(to_float64(&a[0]), |x, y| x - to_float64(y)),
        ))
    });
    m.insert("mulf", &[Any], Some(Any), |_, a| {
        Ok(Value::Float(
            a[1..]
                .iter()
                .fold(to_float64(&a[0]), |x, y| x * to_float64(y)),
        ))
    });
    m.insert("divf", &[Any], Some(Any), |_, a| {
        Ok(Value::Float(
            a[1..]
                .iter()
                .fold(to_float64(&a[0]), |x, y| x / to_float64(y)),
        ))
    });
    m.insert("maxf", &[Any], Some(Any), |_, a| {
        Ok(Value::Float(
            a.iter().map(to_float64).fold(f64::NEG_INFINITY, f64::max),
        ))
    });
    m.insert("minf", &[Any], Some(Any), |_, a| {
        Ok(Value::Float(
            a.iter().map(to_float64).fold(f64::INFINITY, f64::min),
        ))
    });
    m.insert("floor", &[Any], None, |_, a| {
        Ok(Value::Float(to_float64(&a[0]).floor()))
    });
    m.insert("ceil", &[Any], None, |_, a| {
        Ok(Value::Float(to_float64(&a[0]).ceil()))
    });
    m.insert("round", &[Any, Int], Some(Float), |_, a| {
        let round_on = a.get(2).map(to_float64).unwrap_or(0.5);
        let pow = 10f64.powi(i(&a[1]) as i32);
        let digit = pow * to_float64(&a[0]);
        // Go's math.Modf keeps the sign in the fraction: -2.5 rounds to -3.
        let r = if digit.fract() >= round_on {
            digit.ceil()
        } else {
            digit.floor()
        };
        Ok(Value::Float(r / pow))
    });
    m.insert("until", &[Int], None, |_, a| {
        Ok(until_step(0, i(&a[0]), if i(&a[0]) < 0 { -1 } else { 1 }))
    });
    m.insert("untilStep", &[Int, Int, Int], None, |_, a| {
        Ok(until_step(i(&a[0]), i(&a[1]), i(&a[2])))
    });
    m.insert("seq", &[], Some(Any), |_, a| {
        let p: Vec<i64> = a.iter().map(to_int64).collect();
        let (start, step, end) = match p.as_slice() {
            [] => return Ok(Value::str("")),
            [e] => (1, if *e < 1 { -1 } else { 1 }, *e),
            [s0, e] => (*s0, if e < s0 { -1 } else { 1 }, *e),
            [s0, st, e, ..] => (*s0, *st, *e),
        };
        let mut out = Vec::new();
        if step != 0 {
            let mut x = start;
            while (step > 0 && x <= end) || (step < 0 && x >= end) {
                out.push(x.to_string());
                if out.len() > 1_000_000 {
                    return Err("seq: too many elements".into());
                }
                x += step;
            }
        }
        Ok(out.join(" ").into())
    });
}

pub(super) fn until_step(start: i64, stop: i64, step: i64) -> Value {
    let mut v = Vec::new();
    if step == 0 || (step > 0 && start >= stop) || (step < 0 && start <= stop) {
        return Value::list(v);
    }
    let mut x = start;
    while (step > 0 && x < stop) || (step < 0 && x > stop) {
        v.push(Value::Int(x));
        if v.len() > 1_000_000 {
            break;
        }
        x += step;
    }
    Value::list(v)
}
