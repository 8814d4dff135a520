module rotcheck.invalid/goverify

go 1.27
