import COpenBLAS

/// Thin wrappers over OpenBLAS (row-major throughout).
public enum BLAS {
    /// C[m x n] = alpha * A[m x k] * B[n x k]^T + beta * C, with leading dimensions.
    @inline(__always)
    public static func gemmNT(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                              c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float = 1, beta: Float = 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// C[m x n] = alpha * A[m x k] * B[k x n] + beta * C.
    @inline(__always)
    public static func gemmNN(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                              c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float = 1, beta: Float = 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// C[m x n] = alpha * A[k x m]^T * B[k x n] + beta * C.
    @inline(__always)
    public static func gemmTN(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                              c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float = 1, beta: Float = 0) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Solves L X = B in place (B [m x n]), L [m x m] unit lower triangular (its diagonal and upper
    /// part are not read).
    @inline(__always)
    public static func solveUnitLower(m: Int, n: Int, l: UnsafePointer<Float>, ldl: Int, b: UnsafeMutablePointer<Float>, ldb: Int) {
        cblas_strsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasUnit, Int32(m), Int32(n), 1, l, Int32(ldl), b, Int32(ldb))
    }

    /// Sets OpenBLAS's own thread count. The engine keeps it at 1 and splits work itself by shape.
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
}
