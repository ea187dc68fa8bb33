/* Runs a kernel's grid on the CPU (tests/cuda_host.py): blocks one after another in CUDA's
 * order (x fastest), each block's threads as fibers in one OS thread. A fiber runs
 * until it waits (at __syncthreads, or at a warp shuffle), then the next one runs. A warp's
 * shuffle completes when every live lane of the warp waits at it; a block barrier when every
 * live thread of the block waits at it. Block (0,0,0) always runs as fibers; a kernel that
 * waited nowhere there runs its other blocks as plain calls, thread after thread (much
 * faster), and a wait met in that mode is reported, never silently skipped.
 *
 * pdn_host_launch's result: 0, or a bitmask of what went wrong:
 *   1  __syncthreads or a shuffle in a block run without fibers (block 0 had none)
 *   2  divergent __syncthreads: some threads of the block returned while others waited
 *   4  more than 1024 threads a block
 *   8  deadlock: threads wait at a block barrier while others wait at a shuffle */
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "pdn_host_cuda.h"

pdn_dim3 threadIdx, blockIdx, blockDim, gridDim;

/* Fiber contexts. On x86-64 a switch saves the callee-saved registers on the stack and
 * swaps stack pointers (no system call: glibc's swapcontext saves the signal mask with two
 * of them, which made a block reduction 30 times slower); elsewhere ucontext. */
#if defined(__x86_64__)
extern "C" void pdn_fiber_switch(void **save_sp, void *new_sp);
asm(".text\n"
    ".globl pdn_fiber_switch\n"
    ".hidden pdn_fiber_switch\n"
    ".type pdn_fiber_switch, @function\n"
    "pdn_fiber_switch:\n"
    "    pushq %rbp\n    pushq %rbx\n    pushq %r12\n    pushq %r13\n    pushq %r14\n"
    "    pushq %r15\n"
    "    movq %rsp, (%rdi)\n"
    "    movq %rsi, %rsp\n"
    "    popq %r15\n    popq %r14\n    popq %r13\n    popq %r12\n    popq %rbx\n"
    "    popq %rbp\n"
    "    ret\n"
    ".size pdn_fiber_switch, .-pdn_fiber_switch\n");

namespace {
struct Context {
    void *sp;
};

void context_start(Context *c, char *stack, size_t size, void (*entry)())
{
    void **sp = reinterpret_cast<void **>(reinterpret_cast<uintptr_t>(stack + size) & ~uintptr_t(15));
    *--sp = nullptr;                            /* entry starts as if called: rsp = 8 mod 16 */
    *--sp = reinterpret_cast<void *>(entry);    /* where the first switch returns to */
    for (int i = 0; i < 6; ++i) *--sp = nullptr;   /* rbp, rbx, r12-r15 */
    c->sp = sp;
}

void context_switch(Context *from, Context *to) { pdn_fiber_switch(&from->sp, to->sp); }
}  // namespace
#else
#include <ucontext.h>

namespace {
typedef ucontext_t Context;

void context_start(Context *c, char *stack, size_t size, void (*entry)())
{
    getcontext(c);
    c->uc_stack.ss_sp = stack;
    c->uc_stack.ss_size = size;
    c->uc_link = nullptr;
    makecontext(c, entry, 0);
}

void context_switch(Context *from, Context *to) { swapcontext(from, to); }
}  // namespace
#endif

namespace {

const size_t kStack = 128 * 1024;
const int kMaxThreads = 1024;

enum State { RUNNABLE, AT_BARRIER, AT_SHUFFLE, DONE };

struct Fiber {
    Context ctx;
    State state;
};

std::vector<Fiber> fibers;
std::vector<char *> stacks;
Context scheduler;
int current = -1;          /* the running fiber; -1: plain calls */
int errors = 0;
long waits = 0;
void (*body_fn)(void *) = nullptr;
void *body_arg = nullptr;
unsigned char shfl_slots[kMaxThreads][8];

void set_thread(int t)
{
    threadIdx.x = t % blockDim.x;
    threadIdx.y = (t / blockDim.x) % blockDim.y;
    threadIdx.z = t / (blockDim.x * blockDim.y);
}

/* a fiber's whole life: the kernel for its thread, then back to the scheduler for good */
void fiber_main()
{
    body_fn(body_arg);
    fibers[current].state = DONE;
    context_switch(&fibers[current].ctx, &scheduler);
    std::abort();   /* a finished fiber is never resumed */
}

/* Lets every fiber waiting at ``what`` in [first, end) run on; true where all live fibers
 * there were waiting at it. */
bool release(int first, int end, State what)
{
    int waiting = 0, live = 0;
    for (int t = first; t < end; ++t) {
        if (fibers[t].state == DONE) continue;
        ++live;
        waiting += fibers[t].state == what;
    }
    if (!live || waiting != live) return false;
    for (int t = first; t < end; ++t)
        if (fibers[t].state == what) fibers[t].state = RUNNABLE;
    return true;
}

void run_block_as_fibers(int threads)
{
    while ((int)stacks.size() < threads) stacks.push_back(static_cast<char *>(std::malloc(kStack)));
    fibers.resize(threads);
    for (int t = 0; t < threads; ++t) {
        context_start(&fibers[t].ctx, stacks[t], kStack, fiber_main);
        fibers[t].state = RUNNABLE;
    }
    for (;;) {
        for (int t = 0; t < threads; ++t) {
            if (fibers[t].state != RUNNABLE) continue;
            current = t;
            set_thread(t);
            context_switch(&scheduler, &fibers[t].ctx);
        }
        bool moved = false;
        for (int w = 0; w < threads; w += 32) moved |= release(w, std::min(w + 32, threads), AT_SHUFFLE);
        if (moved) continue;
        int done = 0, at_barrier = 0;
        for (int t = 0; t < threads; ++t) {
            done += fibers[t].state == DONE;
            at_barrier += fibers[t].state == AT_BARRIER;
        }
        if (done == threads) break;
        if (done + at_barrier < threads) {   /* some wait at a shuffle their warp never reaches */
            errors |= 8;
            break;
        }
        if (done) errors |= 2;
        release(0, threads, AT_BARRIER);
    }
    current = -1;
}

void wait(State what)
{
    if (current < 0) {
        errors |= 1;
        return;
    }
    ++waits;
    fibers[current].state = what;
    context_switch(&fibers[current].ctx, &scheduler);
}

}  // namespace

extern "C" void pdn_host_syncthreads(void) { wait(AT_BARRIER); }

extern "C" void pdn_host_shfl_down(const void *value, void *result, int bytes, int delta)
{
    const int t = current < 0 ? 0 : current;
    std::memcpy(shfl_slots[t], value, bytes);
    wait(AT_SHUFFLE);
    const int threads = (int)(blockDim.x * blockDim.y * blockDim.z);
    const int from = ((t & 31) + delta < 32 && t + delta < threads) ? t + delta : t;
    std::memcpy(result, shfl_slots[from], bytes);
    wait(AT_SHUFFLE);   /* every lane has read before the slots are written again */
}

extern "C" int pdn_host_launch(void (*fn)(void *), void *arg, const unsigned *dims)
{
    gridDim = {dims[0], dims[1], dims[2]};
    blockDim = {dims[3], dims[4], dims[5]};
    const int threads = (int)(blockDim.x * blockDim.y * blockDim.z);
    if (threads < 1 || threads > kMaxThreads) return 4;
    body_fn = fn;
    body_arg = arg;
    errors = 0;
    waits = 0;
    bool cooperative = false;
    for (unsigned z = 0; z < gridDim.z; ++z)
        for (unsigned y = 0; y < gridDim.y; ++y)
            for (unsigned x = 0; x < gridDim.x; ++x) {
                blockIdx = {x, y, z};
                if (x == 0 && y == 0 && z == 0) {
                    run_block_as_fibers(threads);
                    cooperative = waits > 0;
                } else if (cooperative) {
                    run_block_as_fibers(threads);
                } else {
                    for (int t = 0; t < threads; ++t) {
                        set_thread(t);
                        fn(arg);
                    }
                }
            }
    return errors;
}
