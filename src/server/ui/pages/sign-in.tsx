import { Field, Layout } from '../layout';

export function LoginPage(p: { next: string; error?: string }): JSX.Element {
  return (
    <Layout title="Sign in" nav="none" signedIn={false}>
      <h1>Sign in</h1>
      <section class="card">
        <form class="stack" method="post" action="/login">
          <input type="hidden" name="next" value={p.next} />
          <Field
            name="token"
            label="Admin token"
            type="password"
            required
            autocomplete="current-password"
            hint="The value of AMPSIGNAL_ADMIN_TOKEN on the server."
            error={p.error}
          />
          <div class="actions">
            <button type="submit">Sign in</button>
          </div>
        </form>
      </section>
    </Layout>
  );
}

export function NoTokenPage(p: { help: string }): JSX.Element {
  return (
    <Layout title="Admin disabled" nav="none" signedIn={false}>
      <h1>The admin UI is disabled</h1>
      <section class="card">
        <p safe>{p.help}</p>
      </section>
    </Layout>
  );
}
